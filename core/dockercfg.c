/* TEMPORARY stub until the creds branch lands */
#include <stddef.h>
#include <kiln/kiln.h>
#include "dockercfg.h"
int kiln__docker_credentials(const char *reg, char **username, char **secret)
{ (void)reg; *username = NULL; *secret = NULL; return KILN_E_NOTFOUND; }
void kiln__creds_free(char *username, char *secret) { (void)username; (void)secret; }
