package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/web"
)

const (
	// statusAPIEnv, when set, replaces the default of --api, so that a shell pointed at one fleet
	// does not have to repeat its address.
	statusAPIEnv = "FLEETSYNC_API"
	// statusDefaultInterval is how often --watch redraws: the API answers from a few metadata reads,
	// so once a second costs the fleet nothing and keeps the copy bar moving.
	statusDefaultInterval = time.Second
	// statusBarWidth is the number of cells of the copy bar; 20 makes each cell 5%.
	statusBarWidth = 20
	// statusMaxErrorRunes bounds an error line: a server that is not fleetsync may answer a whole
	// HTML page, which the client quotes in its error.
	statusMaxErrorRunes = 300
	// stateCommitted is mongosync's final state: nothing more will change, so --watch stops there.
	stateCommitted = "COMMITTED"
	// clearScreen moves the cursor home and clears the terminal, so --watch redraws in place.
	clearScreen = "\x1b[H\x1b[2J"
)

// statusDefaultAPI is where a node started with the default --port serves its API.
var statusDefaultAPI = "http://127.0.0.1:" + strconv.Itoa(web.DefaultPort)

// runStatus prints a node's /progress as a report a person can read at a glance, once or, with
// --watch, until interrupted or the sync is COMMITTED. Any node answers for the whole fleet.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	defaultAPI, apiSource := statusDefaultAPI, "--api"
	if env := os.Getenv(statusAPIEnv); env != "" {
		defaultAPI, apiSource = env, "$"+statusAPIEnv
	}
	api := fs.String("api", defaultAPI, "API of any node of the fleet, as a URL or host:port; $"+statusAPIEnv+" changes the default")
	watch := fs.Bool("watch", false, "redraw the report every --interval until interrupted or the sync is COMMITTED")
	interval := fs.Duration("interval", statusDefaultInterval, "how often --watch redraws, e.g. 1s or 500ms")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "api" {
			apiSource = "--api"
		}
	})
	base, err := normalizeAPI(*api)
	if err != nil {
		return fail(stderr, "status", fmt.Errorf("%s: %w", apiSource, err))
	}
	if *interval <= 0 {
		return fail(stderr, "status", fmt.Errorf("--interval must be above 0, e.g. 1s or 500ms, not %s", *interval))
	}
	client := web.Client{Base: base}

	if !*watch {
		p, err := client.Progress(context.Background())
		if err != nil {
			return fail(stderr, "status", describeStatusError(base, err))
		}
		fmt.Fprint(stdout, formatStatus(p))
		return exitOK
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	terminal := isTerminal(stdout)
	reported := false // a report is on stdout already, so the next one needs a separator
	for {
		p, err := client.Progress(ctx)
		if ctx.Err() != nil {
			return exitOK // interrupted: the last report on screen is the answer
		}
		if terminal {
			fmt.Fprint(stdout, clearScreen)
		} else if reported && err == nil {
			fmt.Fprintln(stdout) // a blank line between reports in a log or a pipe
		}
		if err != nil {
			// Watching is for waiting: a node restarting or not started yet is expected, so say why
			// and try again rather than give up.
			fail(stderr, "status", fmt.Errorf("%w; retrying every %s", describeStatusError(base, err), *interval))
		} else {
			fmt.Fprint(stdout, formatStatus(p))
			reported = true
			if p.State == stateCommitted {
				return exitOK
			}
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(*interval):
		}
	}
}

// normalizeAPI turns --api into the client's base URL: "host:port" gets http://, ":port" means this
// host, and a trailing slash goes (the client appends /api/v1/...).
func normalizeAPI(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("give the API of a node, like %s or host:%d", statusDefaultAPI, web.DefaultPort)
	}
	if !strings.Contains(s, "://") {
		if strings.HasPrefix(s, ":") {
			s = "127.0.0.1" + s
		}
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not a node's API address; write it like %s or host:%d", s, statusDefaultAPI, web.DefaultPort)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: port %s is not a port number (1 to 65535)", s, port)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// describeStatusError turns a failed /progress call into a sentence the user can act on: an
// unreachable node, a refusal by the API, or an answer that is not fleetsync's.
func describeStatusError(base string, err error) error {
	var apiErr *web.Error
	var urlErr *url.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code != "":
		return fmt.Errorf("the fleetsync API at %s answered %s: %s", base, apiErr.Code, apiErr.Description)
	case errors.As(err, &apiErr):
		return fmt.Errorf("%s answered HTTP %d without a progress report; is it a fleetsync node's API?", base, apiErr.Status)
	case errors.As(err, &urlErr):
		return fmt.Errorf("cannot reach the fleetsync API at %s (%s); start a node with --port, or pass --api", base, unreachableReason(urlErr))
	}
	return errors.New(truncateRunes(fmt.Sprintf("%s did not answer like a fleetsync API: %v", base, err), statusMaxErrorRunes))
}

// unreachableReason is the short cause of a failed connection ("connection refused"), without the
// method, URL and dial details the user already knows.
func unreachableReason(err *url.Error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	case err.Timeout():
		return "no answer in time"
	}
	inner := error(err)
	for next := errors.Unwrap(inner); next != nil; next = errors.Unwrap(inner) {
		inner = next
	}
	return inner.Error()
}

// truncateRunes cuts s to at most n runes, marking the cut.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// isTerminal tells whether w is a terminal, where --watch redraws in place. It is the stdlib's
// approximation (a character device), which also counts /dev/null: harmless there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// statusSections are the report's parts, in order; each returns its lines. A new part of
// web.Progress gets a function here and nothing else changes.
var statusSections = []func(p web.Progress) []string{
	statusState,
	statusCopy,
	statusPartitions,
	statusApply,
	statusApplier,
	statusOplog,
	statusSpool,
	statusCommit,
	statusVerification,
	statusClusters,
	statusCoordinator,
	statusNodes,
	statusProblems,
}

// formatStatus renders p as plain text, one fact per line, in a layout that stays put between
// redraws and never uses colour, so that it reads the same in a terminal, a log or a test.
func formatStatus(p web.Progress) string {
	var b strings.Builder
	for _, section := range statusSections {
		for _, line := range section(p) {
			b.WriteString(oneLine(line))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func statusState(p web.Progress) []string {
	state, phase := orDefault(p.State, "unknown"), orDefault(p.Fleet.Phase, "none")
	line := fmt.Sprintf("state: %s   phase: %s", state, phase)
	if p.Info != "" {
		line += " (" + p.Info + ")"
	}
	return []string{line}
}

// statusCopy draws the initial copy as a bar of bytes copied. The total is an estimate taken at the
// catalog, so the copied figure can end above or below it: the bar is clamped, and once the copy
// phase is over it is shown full whatever the estimate said.
func statusCopy(p web.Progress) []string {
	copied, total := p.CollectionCopy.EstimatedCopiedBytes, p.CollectionCopy.EstimatedTotalBytes
	docs, totalDocs := p.Fleet.DocumentsCopied, p.Fleet.EstimatedTotalDocs
	switch {
	case total <= 0 && copyNotStarted(p):
		return []string{"copy:  not started"}
	case total <= 0:
		return []string{"copy:  nothing to copy"}
	case copyOver(p):
		return []string{fmt.Sprintf("copy:  %s  100%%  done: %s, %s documents copied", copyBar(1, 1), formatBytes(copied), formatCount(docs))}
	}
	copied = min(max(copied, 0), total)
	line := fmt.Sprintf("copy:  %s  %d%%  %s of %s, ", copyBar(copied, total), copied*100/total, formatBytes(copied), formatBytes(total))
	if totalDocs > 0 {
		line += fmt.Sprintf("%s of %s documents", formatCount(docs), formatCount(totalDocs))
	} else {
		line += formatCount(docs) + " documents"
	}
	return []string{line}
}

// copyNotStarted: the estimate is taken at the end of the catalog phase, so before it a zero total
// means "not yet", after it "the source is empty".
func copyNotStarted(p web.Progress) bool {
	return p.State == metadata.StateIdle || p.Fleet.Phase == "" || p.Fleet.Phase == metadata.PhaseCatalog
}

// copyOver tells that every partition has been copied: the phases after the copy, or the end.
func copyOver(p web.Progress) bool {
	return p.State == stateCommitted || p.Fleet.Phase == metadata.PhaseIndexes || p.Fleet.Phase == metadata.PhaseApply
}

// copyBar is [#####.....] with done/total of its cells filled, rounded down so that it is full only
// when the copy is; done must be within 0..total and total above 0.
func copyBar(done, total int64) string {
	filled := int(done * statusBarWidth / total)
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", statusBarWidth-filled) + "]"
}

func statusPartitions(p web.Progress) []string {
	c := p.Fleet.Partitions
	if c.Total == 0 {
		return []string{"partitions: none"}
	}
	return []string{fmt.Sprintf("partitions: %d done, %d active, %d failed of %d", c.Done, c.Active, c.Failed, c.Total)}
}

// statusApply shows change-event application (lag is known only once the applier runs) and whether
// the user may commit and write to the destination.
func statusApply(p web.Progress) []string {
	var lines []string
	if p.LagTimeSeconds != nil {
		catchup := "unknown"
		if p.EstimatedSecondsToCEACatchup != nil {
			catchup = fmt.Sprintf("%d s", *p.EstimatedSecondsToCEACatchup)
		}
		applied := "unknown"
		if p.TotalEventsApplied != nil {
			applied = formatCount(*p.TotalEventsApplied)
		}
		lines = append(lines, fmt.Sprintf("lag: %d s   events applied: %s   catch-up estimate: %s", *p.LagTimeSeconds, applied, catchup))
	}
	return append(lines, fmt.Sprintf("canCommit: %t   canWrite: %t", p.CanCommit, p.CanWrite))
}

func statusApplier(p web.Progress) []string {
	a := p.Fleet.Applier
	if a == nil {
		return nil
	}
	through := "nothing yet"
	if a.AppliedThrough != nil {
		through = formatOpTime(*a.AppliedThrough)
	}
	return []string{fmt.Sprintf("applier: %s   source: %s   epoch: %d   applied through: %s",
		orDefault(a.Node, "none"), orDefault(a.Source, "unknown"), a.Epoch, through)}
}

// statusOplog shows mongosync's estimate of how long the source's oplog still holds what the sync
// needs from it (while RUNNING).
func statusOplog(p web.Progress) []string {
	if p.EstimatedOplogTimeRemaining == "" {
		return nil
	}
	return []string{"oplog time left: " + p.EstimatedOplogTimeRemaining}
}

// statusSpool shows the capture of change events into the spool: who captures, how many events it
// kept and how many the applier has applied from there, and how far behind the source it is.
func statusSpool(p web.Progress) []string {
	sp := p.Fleet.Spool
	if sp == nil {
		return nil
	}
	capture := fmt.Sprintf("capture lag: %.0f s", sp.LagSeconds)
	if sp.Done {
		capture = "capture done"
	}
	capturer := "none"
	if sp.Capturer != nil {
		capturer = fmt.Sprintf("%s   epoch: %d", sp.Capturer.Node, sp.Capturer.Epoch)
	}
	return []string{fmt.Sprintf("spool: %s captured (%s), %s applied, %s waiting   %s   capturer: %s",
		formatCount(sp.Captured), formatBytes(sp.Bytes), formatCount(sp.Applied), formatCount(sp.Waiting), capture, capturer)}
}

// statusCommit shows the cut-over once /commit was called.
func statusCommit(p web.Progress) []string {
	c := p.Fleet.Commit
	if c == nil {
		return nil
	}
	line := fmt.Sprintf("commit: %s, pause %.2f s", c.Step, c.PauseSeconds)
	if c.Point != nil {
		line += ", commit point " + formatOpTime(*c.Point)
	}
	if c.SourceBlocked {
		line += ", source writes blocked"
	}
	lines := []string{line}
	for _, r := range c.Restored {
		lines = append(lines, "  restored "+oneLine(r))
	}
	return lines
}

// statusVerification shows the embedded verifier's state, when it is on.
func statusVerification(p web.Progress) []string {
	v := p.Verification
	if v == nil {
		return nil
	}
	line := "verification: " + v.Source.Phase
	if v.Result != "" {
		line = fmt.Sprintf("verification: %s, %s documents on each side, %d collections",
			v.Result, formatCount(v.Source.HashedDocumentCount), v.Source.TotalCollectionCount)
	}
	lines := []string{line}
	for _, d := range v.Differences {
		lines = append(lines, "  different: "+oneLine(d))
	}
	return lines
}

// statusClusters shows the answering node's ping to each cluster (-1: unreachable).
func statusClusters(p web.Progress) []string {
	if p.DirectionMapping.Source == "" {
		return nil
	}
	ping := func(ms int64) string {
		if ms < 0 {
			return "unreachable"
		}
		return fmt.Sprintf("%d ms", ms)
	}
	return []string{
		fmt.Sprintf("source:      %s (ping %s)", p.DirectionMapping.Source, ping(p.Source.PingLatencyMs)),
		fmt.Sprintf("destination: %s (ping %s)", p.DirectionMapping.Destination, ping(p.Destination.PingLatencyMs)),
	}
}

func statusCoordinator(p web.Progress) []string {
	c := p.Fleet.Coordinator
	if c == nil {
		return []string{"coordinator: none"}
	}
	return []string{fmt.Sprintf("coordinator: %s   epoch: %d", c.Node, c.Epoch)}
}

// statusNodes lists the fleet with names padded to one column, so that states line up.
func statusNodes(p web.Progress) []string {
	if len(p.Fleet.Nodes) == 0 {
		return []string{"nodes: none"}
	}
	lines := []string{fmt.Sprintf("nodes: %d of %d alive", p.Fleet.NodesAlive, len(p.Fleet.Nodes))}
	width := 0
	for _, n := range p.Fleet.Nodes {
		width = max(width, len(n.Name))
	}
	for _, n := range p.Fleet.Nodes {
		alive := "dead "
		if n.Alive {
			alive = "alive"
		}
		lines = append(lines, fmt.Sprintf("  %-*s  %s  %s", width, n.Name, alive, orDefault(n.API, "no API")))
	}
	return lines
}

// statusProblems comes last, where the eye lands after a redraw: warnings, then errors.
func statusProblems(p web.Progress) []string {
	var lines []string
	for _, w := range p.Warnings {
		lines = append(lines, "warning: "+w)
	}
	if p.Fleet.Error != "" {
		lines = append(lines, "error: "+p.Fleet.Error)
	}
	if a := p.Fleet.Applier; a != nil && a.Error != "" {
		lines = append(lines, "error: applier: "+a.Error)
	}
	if sp := p.Fleet.Spool; sp != nil && sp.Error != "" {
		lines = append(lines, "error: capture: "+sp.Error)
	}
	return lines
}

// formatOpTime shows an optime as the mongo shell does, with its wall-clock time in UTC.
func formatOpTime(t web.OpTime) string {
	return fmt.Sprintf("Timestamp(%d, %d) %s", t.T, t.I, time.Unix(int64(t.T), 0).UTC().Format(time.RFC3339))
}

// formatBytes writes n in decimal units (1 MB = 1,000,000 bytes), as fleetsync's other reports do.
func formatBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v, i := float64(n)/1000, 0
	for v >= 999.95 && i < len(units)-1 { // 999.95 would print as 1000.0
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// formatCount writes n with thousands separators: 98,112.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// oneLine keeps a multi-line message (a warning quoting an error) on its report line.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ")
}
