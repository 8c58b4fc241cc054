FROM python:3.12-slim
RUN <<EOF python3
import sys
print(sys.version)
EOF
RUN python3 - <<'PY' && echo ok
print("stdin")
PY
RUN 3<<FD3 cat <&3
from fd 3
FD3
