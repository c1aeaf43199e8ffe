// Command critest-webserver stands in for the nginx and httpd of the images
// the CRI conformance suite (critest) runs. critest needs of them:
//
//   - an HTTP server answering 200 on a TCP port (80 in a pod, 12003 in the
//     host network);
//   - for nginx, the server's PID in /var/run/nginx.pid, "nginx: master
//     process" in /proc/<pid>/cmdline and "nginx" as the process name, which
//     the process-namespace specs look for with cat, grep and pidof;
//   - for httpd, its name in the container's log.
//
// The process title is set by executing the binary again with the title as
// argv[0]: the kernel then shows it in cmdline while the process name stays
// the binary's file name.
//
// It is built statically (CGO_ENABLED=0), so it runs in an image that holds
// nothing but busybox.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"syscall"
)

func main() {
	name := flag.String("name", "nginx", "server `name`, written in the log and the page")
	port := flag.Int("port", 80, "TCP `port` to listen on, on all addresses")
	pidFile := flag.String("pidfile", "", "write the server's PID to this `file`")
	title := flag.String("title", "", "run with this process `title` as argv[0]")
	flag.Parse()

	if *title != "" && os.Args[0] != *title {
		exe, err := os.Executable()
		if err != nil {
			log.Fatalf("%s: %v", *name, err)
		}
		argv := append([]string{*title}, os.Args[1:]...)
		err = syscall.Exec(exe, argv, os.Environ()) // returns only on failure
		log.Fatalf("%s: exec %s: %v", *name, exe, err)
	}

	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Fatalf("%s: %v", *name, err)
		}
	}
	page := fmt.Sprintf("<html><body><h1>Welcome to %s!</h1></body></html>\n", *name)
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
	})
	addr := ":" + strconv.Itoa(*port)
	fmt.Fprintf(os.Stderr, "%s: serving HTTP on %s\n", *name, addr)
	log.Fatalf("%s: %v", *name, http.ListenAndServe(addr, nil))
}
