#include "../csrc/cgroup_watch.c"
