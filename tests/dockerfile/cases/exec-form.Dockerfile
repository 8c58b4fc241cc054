FROM python:3.12-slim
ENTRYPOINT ["python3", "-m", "http.server"]
CMD ["--bind", "0.0.0.0", "8000"]
RUN ["/bin/sh", "-c", "echo \"quoted\" \\ back\tslash \u00e9 \ud83d\ude00 \/"]
RUN [ "echo" ,"spaces around" ]   
