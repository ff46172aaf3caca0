package bytesjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// frameSample is sample with every kind the binary form carries.
type frameSample struct {
	S      string
	List   []string
	Map    map[string]string
	Ptr    *string
	Arr    [2]string
	Quoted string `json:",string"`
	hidden string
	B      bool
	I      int
	I8     int8
	I64    int64
	U8     uint8
	U32    uint32
	U64    uint64
	F      float64
	Bools  [3]bool
	Ints   []int64
	Maps   map[string][]uint32
	Nums   map[uint16]*frameSample
	Nil    []string
	Empty  []string
	Skip   string `json:"-"`
	Self   *frameSample
	Bytes  []byte
	Raw    json.RawMessage
	NoRaw  json.RawMessage
}

func frameOf(s string) frameSample {
	return frameSample{
		S: s, List: []string{s, "plain"}, Map: map[string]string{s: s, "k": "v"},
		Ptr: &s, Arr: [2]string{"a", s}, Quoted: s, B: true, I: -7, I8: -128, I64: -1 << 62, U8: 255, U32: 1 << 31, U64: 1<<64 - 1,
		F: 3.5, Bools: [3]bool{true, false, true}, Ints: []int64{0, -1, 1 << 40},
		Maps: map[string][]uint32{s: {1, 2}, "nil": nil}, Nums: map[uint16]*frameSample{7: {I: 1}, 8: nil},
		Empty: []string{}, Self: &frameSample{S: s}, Bytes: []byte(s),
		Raw: json.RawMessage(`{"a": [1, 2]}`),
	}
}

// TestFrameRoundTrip: a binary frame gives back exactly the value, bytes
// that are not UTF-8 included, nil kept apart from empty; a `json:"-"`
// field stays behind, as with JSON.
func TestFrameRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "/p\xff\xfe", Mark, Mark + "x", "\x00", "ünï"} {
		v := frameOf(s)
		v.Skip = "not sent"
		data, err := MarshalFrame(&v)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != binMagic {
			t.Fatalf("%q: not a binary frame: %q", s, data)
		}
		var got frameSample
		if err := UnmarshalFrame(data, &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		v.Skip, v.hidden = "", ""
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%q: round trip changed it:\n got %#v\nwant %#v", s, got, v)
		}
		if got.Nil != nil || got.Empty == nil {
			t.Errorf("%q: nil and empty slices mixed up: %#v %#v", s, got.Nil, got.Empty)
		}
	}
}

// TestFrameJSONFallback: a type the binary form cannot carry (here
// time.Time, a JSON marshaller, and an interface) travels as JSON, which
// UnmarshalFrame reads too.
func TestFrameJSONFallback(t *testing.T) {
	type withTime struct {
		When time.Time
		S    string
	}
	v := withTime{When: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), S: "p\xff"}
	data, err := MarshalFrame(v)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != '{' {
		t.Fatalf("a time.Time went binary: %q", data)
	}
	var got withTime
	if err := UnmarshalFrame(data, &got); err != nil || !got.When.Equal(v.When) || got.S != v.S {
		t.Errorf("got %#v, %v", got, err)
	}
	var s sample // has an interface field
	s.S = "x"
	if data, _ := MarshalFrame(s); data[0] != '{' {
		t.Errorf("an interface went binary: %q", data)
	}
}

// TestFrameOtherLayout: a frame of a type laid out otherwise (another
// build's) is refused, not misread.
func TestFrameOtherLayout(t *testing.T) {
	type v1 struct{ A, B string }
	type v2 struct{ B, A string }
	type v3 struct {
		A string
		B int
	}
	data, err := MarshalFrame(v1{A: "a", B: "b"})
	if err != nil {
		t.Fatal(err)
	}
	var x2 v2
	if err := UnmarshalFrame(data, &x2); err == nil || !strings.Contains(err.Error(), "different builds") {
		t.Errorf("fields in another order read as %#v (%v)", x2, err)
	}
	var x3 v3
	if err := UnmarshalFrame(data, &x3); err == nil {
		t.Errorf("a field of another type read as %#v", x3)
	}
}

// TestFrameDamaged: every truncation of a frame, and a length beyond the
// frame, is an error, never a panic.
func TestFrameDamaged(t *testing.T) {
	v := frameOf("p\xff")
	data, err := MarshalFrame(&v)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		var got frameSample
		if UnmarshalFrame(data[:n], &got) == nil && n > 0 {
			t.Fatalf("a frame cut to %d of %d bytes was accepted", n, len(data))
		}
	}
	huge := append(data[:9:9], binary.AppendUvarint(nil, 1<<40)...)
	var got struct{ S string }
	if UnmarshalFrame(huge, &got) == nil {
		t.Error("a string longer than the frame was accepted")
	}
	extra := append(bytes.Clone(data), 0)
	var x frameSample
	if UnmarshalFrame(extra, &x) == nil {
		t.Error("a frame with bytes left over was accepted")
	}
}

// FuzzFrame: any bytes survive a binary frame in every place a string
// can be; and no input makes UnmarshalFrame panic.
func FuzzFrame(f *testing.F) {
	for _, s := range []string{"", "x", "\xff", Mark, "\x00"} {
		f.Add(s, []byte{binMagic, 1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, s string, junk []byte) {
		v := frameOf(s)
		data, err := MarshalFrame(&v)
		if err != nil {
			t.Fatal(err)
		}
		var got frameSample
		if err := UnmarshalFrame(data, &got); err != nil {
			t.Fatal(err)
		}
		v.hidden = ""
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("%q: round trip changed it", s)
		}
		// Junk after a valid fingerprint reaches the decoder proper.
		bad := append(data[:9:9], junk...)
		var x frameSample
		UnmarshalFrame(bad, &x)
	})
}

// TestFrameCountClaimsNoMemory: a slice's count that the bytes after it
// cannot fill is refused having allocated only for the elements the bytes
// held, not for the count (each [64]*int below is 64 bytes on the wire and
// 512 in memory: a count of 1<<20 once made a 512 MiB slice up front).
func TestFrameCountClaimsNoMemory(t *testing.T) {
	type lying struct{ L [][64]*int }
	empty, err := MarshalFrame(&lying{})
	if err != nil {
		t.Fatal(err)
	}
	// The header, then the slice's count (n+1), then n bytes: enough to
	// pass the count's bound, a 64th of what the elements need.
	const n = 1 << 20
	data := binary.AppendUvarint(bytes.Clone(empty[:len(empty)-1]), n+1)
	data = append(data, make([]byte, n)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var got lying
	if UnmarshalFrame(data, &got) == nil {
		t.Fatal("a slice whose elements run past the frame was accepted")
	}
	runtime.ReadMemStats(&after)
	if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 64 {
		t.Errorf("decoding a lying count allocated %d MiB", mb)
	}
}
