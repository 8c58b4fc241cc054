from alpine:3.20 as Base
	run echo indented with a tab
Copy . /src
wOrKdIr /src
