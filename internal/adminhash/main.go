// Command adminhash prints the bcrypt hash of a password read from standard input, for
// Switchboard's --admin-password-hash (the admin UI's login):
//
//	printf '%s' 'the password' | go run ./internal/adminhash
//
// The password is read from stdin rather than taken as an argument so that it stays out of the
// shell's history and the process list; one trailing newline is dropped.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	cost := flag.Int("cost", 12, "bcrypt cost (4-31); each step doubles a login's time")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *cost); err != nil {
		fmt.Fprintln(os.Stderr, "adminhash:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, cost int) error {
	password, err := io.ReadAll(io.LimitReader(in, 1024))
	if err != nil {
		return fmt.Errorf("read the password: %w", err)
	}
	password = bytes.TrimSuffix(password, []byte("\n"))
	password = bytes.TrimSuffix(password, []byte("\r"))
	if len(password) == 0 {
		return fmt.Errorf("no password on standard input (printf '%%s' 'the password' | go run ./internal/adminhash)")
	}
	hash, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return fmt.Errorf("hash the password: %w", err) // longer than bcrypt's 72 bytes, or a bad cost
	}
	_, err = fmt.Fprintln(out, string(hash))
	return err
}
