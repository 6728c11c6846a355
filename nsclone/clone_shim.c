#include "../csrc/clone_shim.c"
