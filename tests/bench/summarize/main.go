// Command summarize prints the Markdown tables of a compare.sh run: for
// each scenario the median of each broker's headline figure over the
// rounds, and the ratio of Stampede's median to each peer's.
//
// It reads DIR/scenarios.tsv (key, JSON path of the headline figure,
// "higher" or "lower" is better, label; tab-separated) and DIR/runs.tsv
// (key, broker, round, stompbench's exit code, JSON file name), both
// written by compare.sh.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const ours = "stampede"

type scenario struct {
	key, metric, better, label string
}

type run struct {
	key, broker, round string
	exit               int
	file               string
	doc                map[string]any // nil when the JSON is missing or unreadable
}

func main() {
	dir := flag.String("dir", ".", "results directory of one compare.sh run")
	flag.Parse()
	if err := summarize(os.Stdout, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "summarize:", err)
		os.Exit(1)
	}
}

func readTSV(path string, fields int) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < fields {
			return nil, fmt.Errorf("%s: %q has %d fields, want %d", path, line, len(cols), fields)
		}
		rows = append(rows, cols)
	}
	return rows, sc.Err()
}

func summarize(w io.Writer, dir string) error {
	srows, err := readTSV(filepath.Join(dir, "scenarios.tsv"), 4)
	if err != nil {
		return err
	}
	var scenarios []scenario
	for _, r := range srows {
		scenarios = append(scenarios, scenario{r[0], r[1], r[2], r[3]})
	}
	rrows, err := readTSV(filepath.Join(dir, "runs.tsv"), 5)
	if err != nil {
		return err
	}
	var runs []run
	var brokers []string
	for _, r := range rrows {
		exit, _ := strconv.Atoi(r[3])
		rn := run{key: r[0], broker: r[1], round: r[2], exit: exit, file: r[4]}
		if b, err := os.ReadFile(filepath.Join(dir, r[4])); err == nil {
			var doc map[string]any
			if json.Unmarshal(b, &doc) == nil {
				rn.doc = doc
			}
		}
		runs = append(runs, rn)
		if !slices.Contains(brokers, r[1]) {
			brokers = append(brokers, r[1])
		}
	}
	// Stampede first, the peers in the order they ran.
	sort.SliceStable(brokers, func(i, j int) bool { return brokers[i] == ours && brokers[j] != ours })
	peers := slices.DeleteFunc(slices.Clone(brokers), func(b string) bool { return b == ours })
	hasOurs := slices.Contains(brokers, ours)

	fmt.Fprintln(w, "### Medians")
	fmt.Fprintln(w)
	head := []string{"scenario", "figure"}
	head = append(head, brokers...)
	if hasOurs {
		for _, p := range peers {
			head = append(head, ours+"/"+p)
		}
	}
	table(w, head)
	for _, sc := range scenarios {
		row := []string{sc.key, sc.label + " (" + sc.better + " is better)"}
		med := map[string]float64{}
		for _, b := range brokers {
			vals, failed, n := values(runs, sc.key, b, sc.metric)
			if n == 0 {
				row = append(row, "–")
				continue
			}
			if len(vals) == 0 {
				// Every run failed: show what they measured, marked, and
				// leave the broker out of the ratios.
				if len(failed) == 0 {
					row = append(row, fmt.Sprintf("failed (0/%d ok)", n))
				} else {
					row = append(row, fmt.Sprintf("%s† (0/%d ok)", num(median(failed)), n))
				}
				continue
			}
			ok := len(vals)
			m := median(vals)
			med[b] = m
			cell := num(m)
			if ok < n {
				cell += fmt.Sprintf(" (%d/%d ok)", ok, n)
			}
			if len(vals) > 1 {
				lo, hi := slices.Min(vals), slices.Max(vals)
				cell += " [" + num(lo) + "–" + num(hi) + "]"
			}
			row = append(row, cell)
		}
		if hasOurs {
			for _, p := range peers {
				o, ok1 := med[ours]
				v, ok2 := med[p]
				if !ok1 || !ok2 || v == 0 {
					row = append(row, "–")
					continue
				}
				row = append(row, fmt.Sprintf("%.2f×", o/v))
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians of the runs that exited 0, [lowest–highest] when there are several; † marks a figure from runs that all exited non-zero (lost, duplicated or failed messages), left out of the ratios.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Every run")
	fmt.Fprintln(w)
	table(w, []string{"scenario", "broker", "round", "exit", "headline", "rate/s", "p99 µs", "lost", "dup", "errors", "broker CPU s", "broker RSS KiB", "tool CPU s", "file"})
	for _, sc := range scenarios {
		for _, r := range runs {
			if r.key != sc.key {
				continue
			}
			cells := []string{r.key, r.broker, r.round, strconv.Itoa(r.exit)}
			for _, path := range []string{sc.metric, "rate_per_s", "latency_us.p99", "lost", "duplicated", "errors", "broker_cpu_s", "broker_rss_kib", "tool_cpu_s"} {
				if v, err := lookup(r.doc, path); err == nil {
					cells = append(cells, num(v))
				} else {
					cells = append(cells, "–")
				}
			}
			cells = append(cells, r.file)
			fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
		}
	}
	return nil
}

func table(w io.Writer, head []string) {
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintln(w, "|"+strings.Join(seps, "|")+"|")
}

// values returns the headline figures of the runs of key on broker: vals
// from the runs that exited 0, failed from the others, and n counts every
// run. A run that exited non-zero (lost or duplicated messages, errors, a
// timeout) does not count toward the median: its figure is not comparable.
func values(runs []run, key, broker, metric string) (vals, failed []float64, n int) {
	for _, r := range runs {
		if r.key != key || r.broker != broker {
			continue
		}
		n++
		v, err := lookup(r.doc, metric)
		switch {
		case err != nil:
		case r.exit != 0:
			// A failed run's zero means it never got to measure.
			if v != 0 {
				failed = append(failed, v)
			}
		default:
			vals = append(vals, v)
		}
	}
	return vals, failed, n
}

// lookup follows a dotted path (latency_us.p99) to a number.
func lookup(doc map[string]any, path string) (float64, error) {
	if doc == nil {
		return 0, errors.New("no JSON")
	}
	var cur any = doc
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("%s: not an object at %q", path, k)
		}
		if cur, ok = m[k]; !ok {
			return 0, fmt.Errorf("%s: no %q", path, k)
		}
	}
	switch v := cur.(type) {
	case float64:
		return v, nil
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%s: not a number", path)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// num prints a figure with thousands separators, and two decimals when it
// is small enough for them to matter.
func num(v float64) string {
	if math.Abs(v) < 100 && v != math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
