// Command fleetsync migrates a live MongoDB deployment to another one with a fleet of identical nodes.
//
// This file dispatches subcommands; each lives in its own file with its flags. Library code never
// exits or prints: it returns errors, and the commands turn them into one line and an exit code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes shared by every subcommand. verify's 1 means "compared, and different".
const (
	exitOK        = 0
	exitDifferent = 1
	exitError     = 2
)

const usage = `fleetsync: move a live MongoDB deployment to another one, with a fleet of nodes.

Usage:
  fleetsync --cluster0 URI --cluster1 URI [--id ID] [--name NAME] [--port 27182] [--workers N] ...
                    run one node of a fleet (nodes with the same clusters and --id form one fleet)
  fleetsync verify  --cluster0 URI --cluster1 URI [--include db.coll,...] [--json] [--ignore-field-order]
  fleetsync sandbox [--source-port P] [--destination-port P] [--seed-docs N] [--seed-collections K] [--seed S]
  fleetsync demo    [--docs N] [--collections K] [--seed S] [--nodes N] [--rate OPS] [--apply-for D]
  fleetsync load    --uri URI [--rate 500] [--duration D] [--seed S] [--workers N] [--include db.coll,...]
                    write inserts, updates, replacements and deletes at a steady rate, for testing
  fleetsync bench verify|copy [--docs N] [--collections K] [--runs R] [--workers 1,2,4 (copy only)]
  fleetsync bench cea [--backlog N] [--runs R] [--rates 500,1000,...] [--memory-backlog N] [--lanes N]
  fleetsync bench commit [--docs N] [--rate OPS] [--nodes N] [--steady D] [--runs R] [--quick]
  fleetsync status  [--api URL] [--watch] [--interval D]
                    show a running fleet's progress, from any node's API (default $FLEETSYNC_API or 127.0.0.1:27182)

Run 'fleetsync COMMAND -h' for a command's flags.
`

var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"verify":  runVerify,
	"sandbox": runSandbox,
	"demo":    runDemo,
	"bench":   runBench,
	"load":    runLoad,
	"status":  runStatus,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if strings.HasPrefix(args[0], "-") {
		return runNode(args, stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "fleetsync: unknown command %q; run 'fleetsync help' for the list\n", args[0])
		return exitError
	}
	return cmd(args[1:], stdout, stderr)
}

// newFlags returns a flag set that reports a bad flag as one line instead of printing the whole usage.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args; on failure it prints one line (or the flag list for -h) and returns the exit
// code to use, else -1.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage of fleetsync %s:\n", fs.Name())
		fs.PrintDefaults()
		return exitOK
	}
	if err != nil {
		return fail(stderr, fs.Name(), fmt.Errorf("%v; run 'fleetsync %s -h' for its flags", err, fs.Name()))
	}
	if fs.NArg() > 0 {
		return fail(stderr, fs.Name(), fmt.Errorf("unexpected argument %q; run 'fleetsync %s -h' for its flags", fs.Arg(0), fs.Name()))
	}
	return -1
}

// fail prints err as one line prefixed with the command and returns exitError.
func fail(stderr io.Writer, command string, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(stderr, "fleetsync %s: %s\n", command, msg)
	return exitError
}
