package server

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
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
		{"declared, one first buffer exactly", 511, 511},
		{"declared, past one first buffer", 512, 512},
		{"declared, large, odd", 70_001, 70_001},
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

// stalledBody is a body whose client sent a few bytes and then nothing until the deadline.
type stalledBody struct{ sent []byte }

func (b *stalledBody) Read(p []byte) (int, error) {
	if len(b.sent) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, b.sent)
	b.sent = b.sent[n:]
	return n, nil
}

// TestReadAllAllocatesWhatArrives: the buffer follows the bytes that arrive, not the declared
// Content-Length, so stalled bodies declaring a megabyte each cost bytes, not megabytes.
func TestReadAllAllocatesWhatArrives(t *testing.T) {
	const bodies, declared = 200, 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range bodies {
		got, err := readAll(&stalledBody{sent: []byte(`{"event":`)}, declared)
		if !errors.Is(err, os.ErrDeadlineExceeded) || string(got) != `{"event":` {
			t.Fatalf("readAll = %q, %v", got, err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / bodies; per > 4*firstBodyBuffer {
		t.Fatalf("%d bytes allocated per stalled body declaring %d, want at most %d", per, declared, 4*firstBodyBuffer)
	}
}
