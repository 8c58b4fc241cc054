# syntax=docker/dockerfile:1
ARG TAG=latest
ARG REGISTRY
