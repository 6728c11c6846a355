/*
 * netns_fast.c: the C fast path of `nsbox netns add NAME` and
 * `nsbox netns del NAME`, run from run_fast.c's ELF constructor before the
 * Go runtime starts. Placeholder: it leaves every command line to Go.
 */

/* nsb_fast_netns handles argv when it can and exits; it returns when Go
 * must handle the command line. */
static void nsb_fast_netns(int argc, char **argv, char **envp)
{
	(void)argc;
	(void)argv;
	(void)envp;
}
