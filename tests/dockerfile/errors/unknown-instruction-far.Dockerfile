FROM alpine:3.20
PROVISION ansible
