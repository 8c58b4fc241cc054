FROM --platform=${}  alpine:3.20
