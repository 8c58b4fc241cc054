

   FROM	alpine:3.20    AS    spaced   
RUN	echo tab-separated	args	
  RUN echo after two no-break spaces
ENV	TABBED=1
