/*
 * kiln.h: the umbrella header of kiln's public API.
 *
 * Everything a plugin may use is declared under include/kiln/; anything not
 * declared there is private to the core. Include this one header.
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/common.h"
#include "kiln/error.h"
#include "kiln/event.h"
#include "kiln/check.h"
#include "kiln/build.h"
#include "kiln/graph.h"
#include "kiln/ignore.h"
#include "kiln/plugin.h"

#endif
