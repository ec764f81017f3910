package server

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	tests := []struct {
		name string
		size int
		hint int64 // the declared Content-Length; -1 for none
	}{
		{"empty", 0, 0},
		{"declared", 100, 100},
		{"declared, large", 5000, 5000},
		{"chunked, small", 100, -1},
		{"chunked, one buffer exactly", 512, -1},
		{"chunked, past one buffer", 513, -1},
		{"chunked, large", 70_000, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := bytes.Repeat([]byte("0123456789"), tt.size/10+1)[:tt.size]
			got, err := readAll(iotest.HalfReader(bytes.NewReader(want)), tt.hint)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, err %v; want %d bytes", len(got), err, len(want))
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		if _, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), -1); err != io.ErrUnexpectedEOF {
			t.Fatalf("err %v, want %v", err, io.ErrUnexpectedEOF)
		}
	})
}
