package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// summary is what a critest (ginkgo) run reports at its end.
type summary struct {
	Ran, Total                       int
	Passed, Failed, Pending, Skipped int
	Failures                         []string // "[FAIL] ..." lines naming failed specs
	Found                            bool     // the counts line was seen
}

var (
	ranRe    = regexp.MustCompile(`^Ran (\d+) of (\d+) Specs? in `)
	countsRe = regexp.MustCompile(`^(?:SUCCESS!|FAIL!).*?(\d+) Passed \| (\d+) Failed \| (?:\d+ Flaked \| )?(\d+) Pending \| (\d+) Skipped`)
	// ginkgo prints each failure again after "Summarizing N Failures:".
	failRe = regexp.MustCompile(`^\s*\[(?:FAIL|PANICKED|TIMEDOUT|INTERRUPTED)\] (.+)$`)
)

// parseSummary reads critest's output (run with --ginkgo.no-color).
func parseSummary(r io.Reader) (summary, error) {
	var s summary
	inFailures := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "Summarizing ") && strings.Contains(line, "Failure"):
			inFailures = true
		case inFailures && failRe.MatchString(line):
			s.Failures = append(s.Failures, strings.TrimSpace(line))
		case ranRe.MatchString(line):
			inFailures = false
			m := ranRe.FindStringSubmatch(line)
			s.Ran, s.Total = atoi(m[1]), atoi(m[2])
		case countsRe.MatchString(line):
			m := countsRe.FindStringSubmatch(line)
			s.Passed, s.Failed, s.Pending, s.Skipped = atoi(m[1]), atoi(m[2]), atoi(m[3]), atoi(m[4])
			s.Found = true
		}
	}
	return s, sc.Err()
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (s summary) String() string {
	if !s.Found {
		return "critest printed no summary"
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped, %d pending (ran %d of %d specs)",
		s.Passed, s.Failed, s.Skipped, s.Pending, s.Ran, s.Total)
}
