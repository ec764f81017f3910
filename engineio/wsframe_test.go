package engineio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/internal/wstest"
)

// clientFrame builds a masked frame as a client sends it. The key is fixed so that the frames, the
// fuzz seeds among them, are the same in every run.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	return wstest.AppendFrame(nil, fin, op, [4]byte{0x12, 0x34, 0x56, 0x78}, payload)
}

type got struct {
	op      byte
	payload string
}

func feedAll(r *frameReader, data []byte, step int) ([]got, error) {
	var out []got
	fn := func(op byte, p []byte) error {
		out = append(out, got{op, string(p)})
		return nil
	}
	for len(data) > 0 {
		n := min(step, len(data))
		chunk := append([]byte(nil), data[:n]...) // feed may modify its input
		if err := r.feed(chunk, fn); err != nil {
			return out, err
		}
		data = data[n:]
	}
	return out, nil
}

func TestFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70000)
	cases := []struct {
		name    string
		data    []byte
		max     int
		want    []got
		wantErr error
	}{
		{"text", clientFrame(true, opText, []byte("4hello")), 100, []got{{opText, "4hello"}}, nil},
		{"binary", clientFrame(true, opBinary, []byte{1, 2, 3}), 100, []got{{opBinary, "\x01\x02\x03"}}, nil},
		{"two frames", append(clientFrame(true, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...), 100,
			[]got{{opText, "a"}, {opText, "b"}}, nil},
		{"16-bit length", clientFrame(true, opText, big[:300]), 1000, []got{{opText, string(big[:300])}}, nil},
		{"64-bit length", clientFrame(true, opBinary, big), 100000, []got{{opBinary, string(big)}}, nil},
		{"fragmented with a ping inside", bytes.Join([][]byte{
			clientFrame(false, opText, []byte("he")),
			clientFrame(true, opPing, []byte("p")),
			clientFrame(false, opContinuation, []byte("ll")),
			clientFrame(true, opContinuation, []byte("o")),
		}, nil), 100, []got{{opPing, "p"}, {opText, "hello"}}, nil},
		{"close", clientFrame(true, opClose, []byte{3, 232}), 100, []got{{opClose, "\x03\xe8"}}, nil},
		{"too big", clientFrame(true, opText, big[:101]), 100, nil, errFrameTooBig},
		{"fragments too big together", append(clientFrame(false, opText, big[:60]), clientFrame(true, opContinuation, big[:60])...), 100, nil, errFrameTooBig},
		{"unmasked", []byte{0x81, 0x01, 'a'}, 100, nil, errFrameUnmasked},
		{"reserved bit", append([]byte{0xC1}, clientFrame(true, opText, []byte("a"))[1:]...), 100, nil, errFrameReserved},
		{"unknown opcode", clientFrame(true, 0x3, []byte("a")), 100, nil, errFrameOpcode},
		{"continuation first", clientFrame(true, opContinuation, []byte("a")), 100, nil, errFrameContinuation},
		{"fragmented ping", clientFrame(false, opPing, nil), 100, nil, errFrameControl},
		{"interleaved data frames", append(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...), 100, nil, errFrameInterleaved},
		{"invalid utf-8", clientFrame(true, opText, []byte{0xff, 0xfe}), 100, nil, errFrameUTF8},
	}
	for _, tc := range cases {
		for _, step := range []int{1, 3, 7, 1 << 20} {
			t.Run(tc.name, func(t *testing.T) {
				r := &frameReader{max: tc.max}
				out, err := feedAll(r, tc.data, step)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("step %d: err = %v, want %v", step, err, tc.wantErr)
				}
				if tc.wantErr != nil {
					return
				}
				if len(out) != len(tc.want) {
					t.Fatalf("step %d: got %d frames, want %d", step, len(out), len(tc.want))
				}
				for i := range out {
					if out[i] != tc.want[i] {
						t.Fatalf("step %d: frame %d = %v/%q, want %v/%q", step, i, out[i].op, trim(out[i].payload), tc.want[i].op, trim(tc.want[i].payload))
					}
				}
				if r.partial != nil || r.msg != nil {
					t.Fatalf("step %d: reader keeps memory after whole frames", step)
				}
			})
		}
	}
}

func trim(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func TestAppendFrameHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xFFFF, 0x10000} {
		h := appendFrameHeader(nil, opText, n)
		// Decode it as a frame reader would (without the mask bit the reader refuses it, so
		// check the length field by hand).
		var got int
		switch l := h[1]; {
		case l <= 125:
			got = int(l)
		case l == 126:
			got = int(binary.BigEndian.Uint16(h[2:]))
		default:
			got = int(binary.BigEndian.Uint64(h[2:]))
		}
		if got != n || h[0] != 0x81 {
			t.Errorf("header for %d = %x (length %d)", n, h, got)
		}
	}
}

func TestUnmask(t *testing.T) {
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		want := make([]byte, n)
		key := []byte{1, 2, 3, 4}
		for i := range b {
			want[i] = b[i] ^ key[i%4]
		}
		unmask(b, binary.LittleEndian.Uint32(key))
		if !bytes.Equal(b, want) {
			t.Fatalf("unmask of %d bytes = %x, want %x", n, b, want)
		}
	}
}

// FuzzFrameReader feeds arbitrary bytes, whole and in pieces: the reader must not panic, and
// must decode the same frames (or fail the same way) however the bytes are split.
func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte("4hello")), 3)
	f.Add(append(clientFrame(false, opText, []byte("he")), clientFrame(true, opContinuation, []byte("llo"))...), 1)
	f.Add(clientFrame(true, opClose, []byte{3, 232}), 2)
	f.Add([]byte{0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 4)
	f.Fuzz(func(t *testing.T, data []byte, step int) {
		if step <= 0 || step > len(data)+1 {
			step = len(data) + 1
		}
		whole, errWhole := feedAll(&frameReader{max: 1 << 16}, data, len(data)+1)
		split, errSplit := feedAll(&frameReader{max: 1 << 16}, data, step)
		if (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("whole: %v, split by %d: %v", errWhole, step, errSplit)
		}
		if errWhole == nil && len(whole) != len(split) {
			t.Fatalf("whole gave %d frames, split by %d gave %d", len(whole), step, len(split))
		}
	})
}
