FROM alpine:3.20
ENV X=1
ENV A=$1 B=$$ C=${X}1 D=$X_Y E=cost:$ F=$ G=$.x H=${X}$
RUN echo $X is not expanded in RUN
