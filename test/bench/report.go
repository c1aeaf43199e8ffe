package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/berth-runtime/berth/test/testregistry"
)

// targetRatio is berth's goal for pulls: at most half of containerd's
// median time for the same image from the same registry.
const targetRatio = 0.5

// report is the pull section of docs/benchmarks.md. Results[0] is the
// runtime under test, Results[1] the one it is compared with.
type report struct {
	Machine  machine
	Date     time.Time
	Versions map[string]string
	Image    testregistry.ImageInfo
	Runs     int
	Results  []runtimeResult
	Notes    []string
}

func (r report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine

	w("## Image pull\n\n")
	w("Each runtime pulls `%s` through CRI `PullImage` from the test registry on 127.0.0.1, "+
		"which both reach as the mirror of docker.io. Times are the `PullImage` RPC as the client sees it: "+
		"download, digest checks, unpacking, recording the image. Before every pull the image is removed "+
		"(`RemoveImage`) and the benchmark waits until the runtime's store holds none of its content, so "+
		"every pull downloads every layer; the registry's counters confirm it (layer GETs). "+
		"The runtimes alternate pull by pull, after one warm-up pull each that is not counted.\n\n", imageRef(r.Image))

	w("| | |\n| --- | --- |\n")
	w("| date (UTC) | %s |\n", r.Date.UTC().Format("2006-01-02 15:04"))
	w("| machine | %s, kernel %s |\n", m.OS, m.Kernel)
	w("| CPU | %s, %d CPUs; load average %s before the first pull |\n", m.CPU, m.CPUs, m.LoadAvg)
	w("| memory | %s |\n", gib(m.MemoryBytes))
	w("| image stores | %s (both under the temp dir) |\n", m.Filesystem)
	for _, res := range r.Results {
		w("| %s | %s |\n", res.Name, r.Versions[res.Name])
	}
	w("| image | `%s`: %s in %d layers (%s), image ID `%s` |\n", imageRef(r.Image), mb(r.Image.Size),
		len(r.Image.LayerDigests), layerKinds(r.Image.LayerMediaTypes), short(r.Image.ConfigDigest))
	w("| runs | %d per runtime |\n\n", r.Runs)

	w("| runtime | median (ms) | min (ms) | max (ms) | CPU per pull, median (ms) | layer GETs per pull | blob GETs per pull | stored after pull (MB) | RSS after (MiB) | peak RSS (MiB) |\n")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, res := range r.Results {
		s := summarize(walls(res.Samples))
		c := summarize(cpus(res.Samples))
		w("| %s | %d | %d | %d | %d | %s | %s | %.1f | %.0f | %.0f |\n", res.Name,
			s.Median.Milliseconds(), s.Min.Milliseconds(), s.Max.Milliseconds(), c.Median.Milliseconds(),
			countRange(res.Samples, func(p pullSample) int { return p.LayerGETs }),
			countRange(res.Samples, func(p pullSample) int { return p.BlobGETs }),
			float64(maxStored(res.Samples))/1e6, mib(res.Memory.RSS), mib(res.Memory.Peak))
	}
	w("\n")

	if len(r.Results) >= 2 {
		a, base := r.Results[0], r.Results[1]
		q := ratio(summarize(walls(a.Samples)).Median, summarize(walls(base.Samples)).Median)
		w("Ratio of medians %s / %s: **%.2f**\n\n", a.Name, base.Name, q)
		verdict := "**met**"
		if q > targetRatio {
			verdict = "**not met**"
		}
		w("Target: berthd at most %.1f of containerd's median pull time — %s.\n\n", targetRatio, verdict)
	}

	w("Every run (ms, in the order taken):\n\n")
	w("| run |")
	for _, res := range r.Results {
		w(" %s |", res.Name)
	}
	w("\n| --- |%s\n", strings.Repeat(" ---: |", len(r.Results)))
	w("| warm-up |")
	for _, res := range r.Results {
		w(" %d |", res.Warmup.Wall.Milliseconds())
	}
	w("\n")
	for i := 0; i < r.Runs; i++ {
		w("| %d |", i+1)
		for _, res := range r.Results {
			if i < len(res.Samples) {
				w(" %d |", res.Samples[i].Wall.Milliseconds())
			} else {
				w(" |")
			}
		}
		w("\n")
	}
	w("\n")

	w("Notes:\n\n")
	for _, n := range r.Notes {
		w("- %s\n", n)
	}
	w("- CPU is the daemon's user+system time during the RPC (/proc/PID/stat). Stored is the size of the files in the runtime's image store right after the pull (containerd keeps the compressed layers as well as the unpacked ones). RSS and peak RSS (VmRSS, VmHWM) are read after the last pull.\n")
	w("- The registry runs in the benchmark process on the same machine and serves from memory, so the network costs next to nothing and the times are the runtimes' own work. ")
	w("The layers hold random (incompressible) data, so their gzip streams are mostly stored blocks and inflating them is cheap; an image of ordinary files would add decompression time to both runtimes.\n")
	w("- `sync` runs before each pull, so writeback of one pull's data does not fall into the next one.\n")
	w("- Reproduce with `make bench` (as root); `go run ./test/bench --help` lists the options.\n")
	return b.String()
}

func maxStored(ss []pullSample) int64 {
	var m int64
	for _, s := range ss {
		m = max(m, s.Stored)
	}
	return m
}

// countRange prints the value when every sample has the same, else min–max.
func countRange(ss []pullSample, f func(pullSample) int) string {
	if len(ss) == 0 {
		return "-"
	}
	lo, hi := f(ss[0]), f(ss[0])
	for _, s := range ss[1:] {
		lo, hi = min(lo, f(s)), max(hi, f(s))
	}
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// layerKinds summarises media types, e.g. "gzip".
func layerKinds(types []string) string {
	seen := map[string]bool{}
	var out []string
	for _, t := range types {
		k := "uncompressed"
		switch {
		case strings.HasSuffix(t, "gzip"):
			k = "gzip"
		case strings.HasSuffix(t, "zstd"):
			k = "zstd"
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return strings.Join(out, ", ")
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

func mb(n int64) string   { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
func mib(n int64) float64 { return float64(n) / (1 << 20) }
func gib(n int64) string  { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }
