#include "../csrc/cni_unlink.c"
