# check=skip=JSONArgsRecommended;eror=true
FROM alpine
CMD echo hi
