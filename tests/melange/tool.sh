#!/bin/sh
echo kiln tool
