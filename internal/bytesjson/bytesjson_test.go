package bytesjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// sample holds a string in each place Marshal reaches one.
type sample struct {
	S      string
	List   []string
	Map    map[string]string
	Ptr    *string
	Any    any
	Arr    [2]string
	Inner  *sample `json:",omitempty"`
	Quoted string  `json:",string"`
	Raw    []byte
	hidden string
}

func sampleOf(s string) sample {
	return sample{
		S: s, List: []string{s, "plain"}, Map: map[string]string{s: s, "k": "v"},
		Ptr: &s, Any: s, Arr: [2]string{"a", s}, Inner: &sample{S: s}, Quoted: s,
		Raw: []byte(s),
	}
}

// roundTrip marshals v and unmarshals it into a new value of its type.
func roundTrip(t *testing.T, v sample) (sample, []byte) {
	t.Helper()
	data, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%q): %v", v.S, err)
	}
	var got sample
	if err := Unmarshal(data, &got); err != nil {
		t.Fatalf("Unmarshal(%s): %v", data, err)
	}
	return got, data
}

// TestRoundTrip: every string comes back byte for byte, and a string
// that is UTF-8 and not led by Mark is written as encoding/json writes it.
func TestRoundTrip(t *testing.T) {
	for _, s := range []string{
		"", "plain", "/home/u/proj\xff\xfe", "\xc3", "ünïcode", "\uFFFD real replacement char",
		Mark, Mark + "not base64", Mark + "aGk=", "\x00", "\x00hutch", `back\slash \ufffd as text`,
		`\u0000hutch-bytes: as text`, "a\x80" + Mark,
	} {
		v := sampleOf(s)
		got, data := roundTrip(t, v)
		v.hidden = ""
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%q: round trip changed it:\n got %#v\nwant %#v", s, got, v)
		}
		if utf8.ValidString(s) && !strings.HasPrefix(s, Mark) {
			want, _ := json.Marshal(v)
			if !bytes.Equal(data, want) {
				t.Errorf("%q: written as\n%s\nencoding/json writes\n%s", s, data, want)
			}
		} else if bytes.Contains(data, []byte(`\ufffd`)) {
			t.Errorf("%q: U+FFFD reached the output: %s", s, data)
		}
	}
}

// TestMarshalLeavesArgument: encoding the bytes works on a copy.
func TestMarshalLeavesArgument(t *testing.T) {
	s := "p\xff"
	v := sampleOf(s)
	if _, err := Marshal(&v); err != nil {
		t.Fatal(err)
	}
	if v.S != s || v.List[0] != s || *v.Ptr != s || v.Map[s] != s || v.Inner.S != s {
		t.Errorf("Marshal changed its argument: %#v", v)
	}
}

// TestUnmarshalDamaged: a marked string that is not base64 is an error,
// not a silently different path.
func TestUnmarshalDamaged(t *testing.T) {
	var v sample
	err := Unmarshal([]byte(`{"S":"\u0000hutch-bytes:%%%"}`), &v)
	if err == nil {
		t.Errorf("a damaged byte string was accepted as %q", v.S)
	}
}

// FuzzRoundTrip: any bytes survive Marshal and Unmarshal, in every place
// a string can be, and UTF-8 without Mark is encoding/json's own output.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "x", "\xff", Mark, "\x00", `\ufffd`, "é\xe9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := sampleOf(s)
		got, data := roundTrip(t, v)
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("%q: round trip changed it:\n got %#v\nwant %#v", s, got, v)
		}
		if utf8.ValidString(s) && !strings.HasPrefix(s, Mark) {
			if want, _ := json.Marshal(v); !bytes.Equal(data, want) {
				t.Fatalf("%q: written as %s, encoding/json writes %s", s, data, want)
			}
		}
	})
}
