package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// hashPassword is `broker hash-password`: it reads a secret from the first
// line of stdin (so it stays out of the shell history and the process
// list) and prints its bcrypt hash for a [[user]] passcode.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", bcrypt.DefaultCost, fmt.Sprintf("bcrypt cost, %d to %d: each step doubles the time a login check takes", bcrypt.MinCost, bcrypt.MaxCost))
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: broker hash-password [--cost N] < secret\n\nReads a passcode from the first line of stdin and prints its bcrypt hash,\nfor the passcode of a [[user]] in the --config file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "broker hash-password: the secret is read from stdin, not from arguments")
		return 2
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		fmt.Fprintf(stderr, "broker hash-password: --cost must be between %d and %d\n", bcrypt.MinCost, bcrypt.MaxCost)
		return 2
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "broker hash-password:", err)
		return 1
	}
	secret := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	switch {
	case secret == "":
		fmt.Fprintln(stderr, "broker hash-password: no secret on stdin")
		return 1
	case len(secret) > 72:
		// bcrypt reads only the first 72 bytes; refuse rather than
		// let the rest be silently ignored.
		fmt.Fprintln(stderr, "broker hash-password: the secret is longer than bcrypt's 72 bytes")
		return 1
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), *cost)
	if err != nil {
		fmt.Fprintln(stderr, "broker hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(hash))
	return 0
}
