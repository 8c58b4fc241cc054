# syntax=docker/dockerfile:1-labs
FROM ubuntu:24.04
RUN --device=nvidia.com/gpu=all nvidia-smi
RUN --device=name=vendor1.com/device=foo,required=true --device=other.com/x ls /dev
