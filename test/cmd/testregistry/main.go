// Command testregistry serves the test image catalog of
// github.com/berth-runtime/berth/test/testregistry on a loopback address,
// for trying berth by hand (crictl pull 127.0.0.1:5000/library/busybox)
// where no public registry is reachable.
//
//	go run ./test/cmd/testregistry [--addr 127.0.0.1:5000] [--basic-auth user:pass] [--bearer-auth user:pass] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/berth-runtime/berth/test/testregistry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "loopback `host:port` to listen on")
	basic := flag.String("basic-auth", "", "require HTTP basic auth with `user:pass`")
	bearer := flag.String("bearer-auth", "", "require Docker token auth, exchanging `user:pass` at /token")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()

	opts := testregistry.Options{Addr: *addr}
	var err error
	if opts.BasicAuth, err = parseCreds(*basic); err != nil {
		log.Fatalf("--basic-auth: %v", err)
	}
	if opts.BearerAuth, err = parseCreds(*bearer); err != nil {
		log.Fatalf("--bearer-auth: %v", err)
	}
	if *verbose {
		opts.Logf = log.Printf
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg, err := testregistry.Start(opts)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREFERENCE\tDIGEST\tMEDIA TYPE")
	for _, n := range testregistry.Names() {
		i := reg.Image(n)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, reg.Ref(n), i.ManifestDigest, i.MediaType)
	}
	tw.Flush()
	switch {
	case opts.BearerAuth != nil:
		fmt.Printf("\nserving %s (bearer token auth, token endpoint %s/token); Ctrl-C to stop\n", reg.URL(), reg.URL())
	case opts.BasicAuth != nil:
		fmt.Printf("\nserving %s (basic auth); Ctrl-C to stop\n", reg.URL())
	default:
		fmt.Printf("\nserving %s; Ctrl-C to stop\n", reg.URL())
	}

	<-ctx.Done()
	fmt.Println("stopping")
}

func parseCreds(s string) (*testregistry.Credentials, error) {
	if s == "" {
		return nil, nil
	}
	u, p, ok := strings.Cut(s, ":")
	if !ok || u == "" {
		return nil, fmt.Errorf("want user:pass, got %q", s)
	}
	return &testregistry.Credentials{Username: u, Password: p}, nil
}
