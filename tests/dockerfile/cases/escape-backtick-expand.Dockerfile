# escape=`
FROM mcr.microsoft.com/windows/nanoserver:ltsc2022
ENV DIR=C:\tools PRICE=`$5 QUOTED="a`"b"
WORKDIR $DIR\bin
RUN echo `
    %DIR%
