/*
 * berth-pidns-holder keeps a pod's shared PID namespace alive between its
 * containers: berthd starts it in a new PID namespace, where it is PID 1,
 * as "berth-pidns-holder POD-ID" (the ID lets berthd tell its own holder
 * from a process that reused the PID). It reaps the orphans the kernel
 * hands to PID 1 and ignores the signals of a broad kill; it ends when
 * berthd kills it (SIGKILL) at pod removal.
 *
 * It is C, linked statically, because one runs per such pod for the pod's
 * whole life: it needs a few pages of memory and one thread, where a Go
 * process needs a megabyte and several.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	sigset_t chld;

	if (argc != 2) {
		fprintf(stderr, "usage: %s POD-ID\n", argv[0]);
		return 2;
	}
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	/* SIGCHLD stays blocked and is waited for, so no child's end is
	 * missed between reaping and sleeping. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) {
		perror("sigprocmask");
		return 1;
	}
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (sigwaitinfo(&chld, NULL) < 0 && errno != EINTR) {
			perror("sigwaitinfo");
			return 1;
		}
	}
}
