# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
RUN New-Item -ItemType Directory C:\app ; `
    Set-Location C:\app
COPY app\ C:\app\
WORKDIR C:\app
ENV GREETING="say `"hi`"" `
    HOME_DIR=C:\Users\ContainerUser
