package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name, in, password string
		cost               int
		fails              bool
	}{
		{name: "a line", in: "s3cret pass\n", password: "s3cret pass", cost: bcrypt.MinCost},
		{name: "no newline", in: "s3cret", password: "s3cret", cost: bcrypt.MinCost},
		{name: "CRLF", in: "s3cret\r\n", password: "s3cret", cost: bcrypt.MinCost},
		{name: "empty", in: "\n", fails: true, cost: bcrypt.MinCost},
		{name: "past bcrypt's 72 bytes", in: strings.Repeat("x", 73), fails: true, cost: bcrypt.MinCost},
		{name: "bad cost", in: "s3cret", fails: true, cost: 99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(strings.NewReader(tc.in), &out, tc.cost)
			if tc.fails {
				if err == nil {
					t.Fatalf("hashed %q", tc.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hash := strings.TrimSuffix(out.String(), "\n")
			if bcrypt.CompareHashAndPassword([]byte(hash), []byte(tc.password)) != nil {
				t.Fatalf("%q does not match %q", hash, tc.password)
			}
			if c, _ := bcrypt.Cost([]byte(hash)); c != tc.cost {
				t.Fatalf("cost %d, want %d", c, tc.cost)
			}
		})
	}
}
