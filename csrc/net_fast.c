/*
 * net_fast.c: the networking part of the C fast path of `nsbox run`
 * (--net --bridge BR --addr CIDR [--gateway IP] [--ifname NAME]).
 * Placeholder: run_fast.c leaves every networking flag to Go.
 */
