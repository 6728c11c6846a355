/* subreaper.c: runs argv[1..] as a child subreaper (so that any process the
 * command leaves behind becomes this one's child, as it would init's), waits
 * for the command, then says on stdout whether anything else is left:
 * "exit N none" or "exit N left PID" (a child still running, or a zombie
 * that nobody but this process would reap). Used by
 * TestSandboxFastNothingOutlives. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int st;
	pid_t pid;
	siginfo_t si;

	if (argc < 2 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("subreaper");
		return 2;
	}
	if ((pid = fork()) < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		execv(argv[1], argv + 1);
		perror("exec");
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("waitpid");
		return 2;
	}
	memset(&si, 0, sizeof si);
	/* WNOWAIT|WNOHANG: a zombie shows as si_pid, a running child as 0
	 * with success; only ECHILD means that nothing is left. */
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD)
		printf("exit %d none\n", WEXITSTATUS(st));
	else
		printf("exit %d left %d\n", WEXITSTATUS(st), (int)si.si_pid);
	return 0;
}
