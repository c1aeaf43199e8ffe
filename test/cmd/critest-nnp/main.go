// Command critest-nnp prints the effective user ID it runs with. The image
// the CRI conformance suite uses for NoNewPrivs installs it setuid root and
// runs it as an unprivileged user: with no_new_privs set the setuid bit has
// no effect and it prints that user's ID, without it prints 0.
//
// It is built statically (CGO_ENABLED=0), so it runs in an image that holds
// nothing but busybox.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
