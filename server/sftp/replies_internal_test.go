package sftp

import (
	"encoding/binary"
	"testing"
)

func TestFramingCountsPacketsCutAnywhere(t *testing.T) {
	var stream []byte
	for _, size := range []int{1, 9, 0, 300} {
		stream = binary.BigEndian.AppendUint32(stream, uint32(size))
		stream = append(stream, make([]byte, size)...)
	}
	for cut := 1; cut <= len(stream); cut++ {
		var f framing
		started, ended := 0, 0
		for p := stream; len(p) > 0; {
			k := min(cut, len(p))
			s, e := f.feed(p[:k])
			started, ended = started+s, ended+e
			p = p[k:]
		}
		if started != 4 || ended != 4 {
			t.Fatalf("writes of %d bytes: %d packets started, %d ended; want 4 and 4", cut, started, ended)
		}
	}
}
