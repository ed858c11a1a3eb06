package probe

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Window is one failover as the client saw it.
type Window struct {
	From, To string
	// LastOld is the send time of the last good answer from From before
	// the switch, FirstNew that of the first good answer from To.
	LastOld, FirstNew time.Time
	Failed            int // probes sent between them that got no answer
}

// Duration is the unavailability window: FirstNew − LastOld. 10–20 ms
// means the client saw no outage at a 10 ms probe interval.
func (w Window) Duration() time.Duration { return w.FirstNew.Sub(w.LastOld) }

// Windows finds every change of answering node in results (sorted by send
// time) after since. Answers from the old node that come after the first
// from the new one (probes in flight) do not open a new window.
func Windows(results []Result, since time.Time) []Window {
	var ws []Window
	last := -1 // index of the latest good answer
	for i, r := range results {
		if r.Sent.Before(since) || !r.OK() {
			continue
		}
		if last >= 0 && r.Who != results[last].Who {
			w := Window{From: results[last].Who, To: r.Who, LastOld: results[last].Sent, FirstNew: r.Sent}
			for _, x := range results[last+1 : i] {
				if !x.OK() {
					w.Failed++
				}
			}
			ws = append(ws, w)
		}
		last = i
	}
	return ws
}

// Failed counts the probes without an answer sent in [from, to).
func Failed(results []Result, from, to time.Time) int {
	n := 0
	for _, r := range results {
		if !r.Sent.Before(from) && r.Sent.Before(to) && !r.OK() {
			n++
		}
	}
	return n
}

// Timeline writes one line per step of the probes sent in [from, to):
// which nodes answered how many probes, and how many failed.
func Timeline(w io.Writer, results []Result, from, to time.Time, step time.Duration, marks map[time.Time]string) {
	type bucket struct {
		who    map[string]int
		failed int
	}
	n := int(to.Sub(from)/step) + 1
	bs := make([]bucket, n)
	for _, r := range results {
		if r.Sent.Before(from) || !r.Sent.Before(to) {
			continue
		}
		b := &bs[int(r.Sent.Sub(from)/step)]
		if !r.OK() {
			b.failed++
			continue
		}
		if b.who == nil {
			b.who = map[string]int{}
		}
		b.who[r.Who]++
	}
	markAt := make([]time.Time, 0, len(marks))
	for t := range marks {
		markAt = append(markAt, t)
	}
	sort.Slice(markAt, func(i, j int) bool { return markAt[i].Before(markAt[j]) })
	for i, b := range bs {
		start := from.Add(time.Duration(i) * step)
		var parts []string
		names := make([]string, 0, len(b.who))
		for name := range b.who {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			parts = append(parts, fmt.Sprintf("%s×%d", name, b.who[name]))
		}
		if b.failed > 0 {
			parts = append(parts, fmt.Sprintf("FAILED×%d", b.failed))
		}
		line := fmt.Sprintf("  +%6dms  %-28s", start.Sub(from).Milliseconds(), strings.Join(parts, " "))
		for len(markAt) > 0 && markAt[0].Before(start.Add(step)) {
			line += "  <- " + marks[markAt[0]]
			markAt = markAt[1:]
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
