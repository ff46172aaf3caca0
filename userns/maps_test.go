package userns

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	const file = `# comment
alice:100000:65536
bob:200000:65536
1001:300000:10
alice:400000:5
broken line
carol:x:5
dave:1:0
`
	tests := []struct {
		name string
		id   int
		want []Range
	}{
		{"alice", 1000, []Range{{100000, 65536}, {400000, 5}}},
		{"nobody", 1001, []Range{{300000, 10}}},
		{"carol", 1002, nil},
		{"dave", 1003, nil},
		{"erin", 1004, nil},
	}
	for _, tt := range tests {
		got, err := ParseSubIDs(strings.NewReader(file), tt.name, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFull(t *testing.T) {
	tests := []struct {
		name    string
		inside  uint32
		outside uint32
		subs    []Range
		want    []Mapping // nil: error
	}{
		{"root", 0, 1000, []Range{{100000, 65536}},
			[]Mapping{{0, 1000, 1}, {1, 100000, 65536}}},
		{"keep-id", 1000, 1000, []Range{{100000, 65536}},
			[]Mapping{{0, 100000, 1000}, {1000, 1000, 1}, {1001, 101000, 64536}}},
		{"keep-id over two ranges", 5, 1000, []Range{{100000, 3}, {200000, 4}},
			[]Mapping{{0, 100000, 3}, {3, 200000, 2}, {5, 1000, 1}, {6, 200002, 2}}},
		{"ranges end below own id", 1000, 1000, []Range{{100000, 10}},
			[]Mapping{{0, 100000, 10}, {1000, 1000, 1}}},
		{"no ranges", 0, 1000, nil, nil},
	}
	for _, tt := range tests {
		got, err := Full(tt.inside, tt.outside, tt.subs)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%s: want error, got %v", tt.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if !Contains(got, tt.inside) {
			t.Errorf("%s: own id %d not mapped", tt.name, tt.inside)
		}
	}
}
