package bytesjson

import (
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The frames between hutch's processes (the plan to hutch-init, stage2
// and the services) are read by a process of the same build, which pays
// encoding/json's per-type start-up in each short-lived process: a
// supervisor spent most of a millisecond encoding a plan and init about
// half of one decoding it, for a few kilobytes. MarshalFrame writes such
// values in a compact binary form instead: the exported fields encoding/json
// would write (`json:"-"` ones left out) in declaration order, strings as
// their bytes (so nothing needs Mark), after a fingerprint of the type's
// layout, so that a reader of another build refuses the frame instead of
// misreading it. A type the form cannot carry (an interface, a custom
// JSON or text marshaller) travels as Marshal's JSON; UnmarshalFrame
// tells the two apart by the first byte.

// binMagic begins a binary frame; JSON text never begins with it.
const binMagic = 0xb7

// MarshalFrame encodes v for UnmarshalFrame in a process of the same build.
func MarshalFrame(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem() // as JSON writes it, and UnmarshalFrame reads it
	}
	if !rv.IsValid() || rv.Kind() == reflect.Pointer {
		return Marshal(v)
	}
	c := codecFor(rv.Type())
	if c == nil {
		return Marshal(v)
	}
	b := make([]byte, 0, 4096)
	b = append(b, binMagic)
	b = binary.LittleEndian.AppendUint64(b, c.fp)
	return c.enc(b, rv), nil
}

// UnmarshalFrame decodes what MarshalFrame wrote into v (a non-nil
// pointer).
func UnmarshalFrame(data []byte, v any) error {
	if len(data) == 0 || data[0] != binMagic {
		return Unmarshal(data, v)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decoding a frame into %T: not a pointer", v)
	}
	c := codecFor(rv.Type().Elem())
	if c == nil {
		return fmt.Errorf("a binary frame for %s, which travels as JSON", rv.Type().Elem())
	}
	if len(data) < 9 || binary.LittleEndian.Uint64(data[1:9]) != c.fp {
		return fmt.Errorf("a frame of another layout than this build's %s: hutch and its helpers are from different builds", rv.Type().Elem())
	}
	d := &decoder{data: data[9:]}
	if err := c.dec(d, rv.Elem()); err != nil {
		return err
	}
	if len(d.data) != 0 {
		return fmt.Errorf("%d bytes left over after a frame's %s", len(d.data), rv.Type().Elem())
	}
	return nil
}

// codec encodes and decodes one type; the functions are filled in once
// the type's parts are known (a type may contain itself).
type codec struct {
	enc func(b []byte, v reflect.Value) []byte
	dec func(d *decoder, v reflect.Value) error
	fp  uint64
}

var (
	codecMu sync.Mutex
	codecs  = map[reflect.Type]*codec{} // nil: the type travels as JSON
)

func codecFor(t reflect.Type) *codec {
	codecMu.Lock()
	defer codecMu.Unlock()
	if c, ok := codecs[t]; ok {
		return c
	}
	b := &builder{building: map[reflect.Type]*codec{}, ids: map[reflect.Type]int{}}
	c, err := b.build(t)
	if err != nil {
		codecs[t] = nil
		return nil
	}
	h := fnv.New64a()
	h.Write(b.layout)
	c.fp = h.Sum64() ^ uint64(len(b.layout))
	codecs[t] = c
	return c
}

var errUnsupported = errors.New("not carried by the binary form")

// builder makes the codecs of a type and everything it holds, and writes
// their layout (the fingerprint's input) as it goes.
type builder struct {
	building map[reflect.Type]*codec
	ids      map[reflect.Type]int // types laid out so far, for references back
	layout   []byte
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	jsonUnmarsh   = reflect.TypeFor[json.Unmarshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarsh   = reflect.TypeFor[encoding.TextUnmarshaler]()
	rawMessage    = reflect.TypeFor[json.RawMessage]()
)

func customJSON(t reflect.Type) bool {
	// Only a named type has methods of its own (an unnamed struct may
	// promote an embedded field's), and *T's include T's: so one look at
	// the pointer type, and none for most of a plan's parts.
	if t.Kind() != reflect.Pointer && (t.Name() != "" || t.Kind() == reflect.Struct) {
		t = reflect.PointerTo(t)
	}
	if t.NumMethod() == 0 {
		return false
	}
	for _, i := range []reflect.Type{jsonMarshaler, jsonUnmarsh, textMarshaler, textUnmarsh} {
		if t.Implements(i) {
			return true
		}
	}
	return false
}

func (b *builder) build(t reflect.Type) (*codec, error) {
	if c, ok := b.building[t]; ok {
		b.layout = strconv.AppendInt(append(b.layout, '@'), int64(b.ids[t]), 10)
		return c, nil
	}
	// json.RawMessage is bytes that JSON writes as they are: so does the
	// binary form. Any other type with a marshaller of its own says how
	// it travels only in JSON.
	rawJSON := t == rawMessage
	if customJSON(t) && !rawJSON {
		return nil, errUnsupported
	}
	c := &codec{}
	b.building[t] = c
	b.ids[t] = len(b.ids)
	b.layout = append(b.layout, byte(t.Kind()))
	switch k := t.Kind(); {
	case rawJSON:
		c.enc, c.dec = encBytes, decBytes
	case k == reflect.Bool:
		c.enc, c.dec = encBool, decBool
	case k >= reflect.Int && k <= reflect.Int64:
		c.enc, c.dec = encInt, decInt
	case k >= reflect.Uint && k <= reflect.Uintptr:
		c.enc, c.dec = encUint, decUint
	case k == reflect.Float32 || k == reflect.Float64:
		c.enc, c.dec = encFloat, decFloat
	case k == reflect.String:
		c.enc, c.dec = encString, decString
	case k == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !customJSON(t.Elem()):
		c.enc, c.dec = encBytes, decBytes
	case k == reflect.Pointer:
		e, err := b.build(t.Elem())
		if err != nil {
			return nil, err
		}
		c.enc, c.dec = ptrCodec(e)
	case k == reflect.Slice:
		e, err := b.build(t.Elem())
		if err != nil {
			return nil, err
		}
		c.enc, c.dec = sliceCodec(e)
	case k == reflect.Array:
		e, err := b.build(t.Elem())
		if err != nil {
			return nil, err
		}
		b.layout = strconv.AppendInt(append(b.layout, '['), int64(t.Len()), 10)
		c.enc, c.dec = arrayCodec(e)
	case k == reflect.Map:
		kc, err := b.build(t.Key())
		if err != nil {
			return nil, err
		}
		vc, err := b.build(t.Elem())
		if err != nil {
			return nil, err
		}
		c.enc, c.dec = mapCodec(kc, vc)
	case k == reflect.Struct:
		return c, b.structCodec(c, t)
	default: // interfaces, channels, functions, complex numbers
		return nil, errUnsupported
	}
	return c, nil
}

// structCodec carries the fields encoding/json would: exported, and not
// tagged "-".
func (b *builder) structCodec(c *codec, t reflect.Type) error {
	var idx []int
	var fields []*codec
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		// `json:"-"` exactly (`json:"-,"` names a field "-"), without
		// parsing every tag.
		if !f.IsExported() || strings.Contains(string(f.Tag), `json:"-"`) {
			continue
		}
		b.layout = append(append(b.layout, '{'), f.Name...)
		fc, err := b.build(f.Type)
		if err != nil {
			return err
		}
		idx = append(idx, i)
		fields = append(fields, fc)
	}
	b.layout = append(b.layout, '}')
	c.enc = func(buf []byte, v reflect.Value) []byte {
		for j, i := range idx {
			buf = fields[j].enc(buf, v.Field(i))
		}
		return buf
	}
	c.dec = func(d *decoder, v reflect.Value) error {
		for j, i := range idx {
			if err := fields[j].dec(d, v.Field(i)); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

func encBool(b []byte, v reflect.Value) []byte {
	if v.Bool() {
		return append(b, 1)
	}
	return append(b, 0)
}

func decBool(d *decoder, v reflect.Value) error {
	x, err := d.uvarint()
	if err != nil || x > 1 {
		return d.bad("a bool")
	}
	v.SetBool(x == 1)
	return nil
}

func encInt(b []byte, v reflect.Value) []byte { return binary.AppendVarint(b, v.Int()) }

func decInt(d *decoder, v reflect.Value) error {
	x, n := binary.Varint(d.data)
	if n <= 0 || v.OverflowInt(x) {
		return d.bad("an integer")
	}
	d.data = d.data[n:]
	v.SetInt(x)
	return nil
}

func encUint(b []byte, v reflect.Value) []byte { return binary.AppendUvarint(b, v.Uint()) }

func decUint(d *decoder, v reflect.Value) error {
	x, err := d.uvarint()
	if err != nil || v.OverflowUint(x) {
		return d.bad("an unsigned integer")
	}
	v.SetUint(x)
	return nil
}

func encFloat(b []byte, v reflect.Value) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
}

func decFloat(d *decoder, v reflect.Value) error {
	if len(d.data) < 8 {
		return d.bad("a number")
	}
	v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(d.data)))
	d.data = d.data[8:]
	return nil
}

func encString(b []byte, v reflect.Value) []byte {
	s := v.String()
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func decString(d *decoder, v reflect.Value) error {
	n, err := d.length()
	if err != nil {
		return err
	}
	v.SetString(string(d.data[:n]))
	d.data = d.data[n:]
	return nil
}

// Slices and maps keep nil apart from empty, as JSON's null and []: 0 is
// nil, n+1 is n elements.
func encBytes(b []byte, v reflect.Value) []byte {
	if v.IsNil() {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(v.Len())+1)
	return append(b, v.Bytes()...)
}

func decBytes(d *decoder, v reflect.Value) error {
	n, isNil, err := d.nilLength()
	if err != nil || isNil {
		return err
	}
	s := reflect.MakeSlice(v.Type(), n, n)
	copy(s.Bytes(), d.data[:n])
	d.data = d.data[n:]
	v.Set(s)
	return nil
}

func ptrCodec(e *codec) (func([]byte, reflect.Value) []byte, func(*decoder, reflect.Value) error) {
	enc := func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		return e.enc(append(b, 1), v.Elem())
	}
	dec := func(d *decoder, v reflect.Value) error {
		x, err := d.uvarint()
		if err != nil || x > 1 {
			return d.bad("a pointer")
		}
		if x == 0 {
			v.SetZero()
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := e.dec(d, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	return enc, dec
}

func sliceCodec(e *codec) (func([]byte, reflect.Value) []byte, func(*decoder, reflect.Value) error) {
	enc := func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		for i := 0; i < v.Len(); i++ {
			b = e.enc(b, v.Index(i))
		}
		return b
	}
	dec := func(d *decoder, v reflect.Value) error {
		n, ok, err := d.sequence(v)
		if !ok {
			return err
		}
		s := reflect.MakeSlice(v.Type(), 0, min(n, preallocMax))
		elem := reflect.New(v.Type().Elem()).Elem()
		for i := 0; i < n; i++ {
			elem.SetZero()
			if err := e.dec(d, elem); err != nil {
				return err
			}
			s = reflect.Append(s, elem)
		}
		v.Set(s)
		return nil
	}
	return enc, dec
}

func arrayCodec(e *codec) (func([]byte, reflect.Value) []byte, func(*decoder, reflect.Value) error) {
	enc := func(b []byte, v reflect.Value) []byte {
		for i := 0; i < v.Len(); i++ {
			b = e.enc(b, v.Index(i))
		}
		return b
	}
	dec := func(d *decoder, v reflect.Value) error {
		for i := 0; i < v.Len(); i++ {
			if err := e.dec(d, v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	}
	return enc, dec
}

func mapCodec(kc, vc *codec) (func([]byte, reflect.Value) []byte, func(*decoder, reflect.Value) error) {
	enc := func(b []byte, v reflect.Value) []byte {
		if v.IsNil() {
			return append(b, 0)
		}
		b = binary.AppendUvarint(b, uint64(v.Len())+1)
		for it := v.MapRange(); it.Next(); {
			b = kc.enc(b, it.Key())
			b = vc.enc(b, it.Value())
		}
		return b
	}
	dec := func(d *decoder, v reflect.Value) error {
		n, ok, err := d.sequence(v)
		if !ok {
			return err
		}
		m := reflect.MakeMapWithSize(v.Type(), min(n, preallocMax))
		for i := 0; i < n; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			if err := kc.dec(d, k); err != nil {
				return err
			}
			if err := vc.dec(d, e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
		return nil
	}
	return enc, dec
}

// decoder reads a binary frame; every read checks what is left, so a
// damaged frame is an error, never a panic or a huge allocation.
type decoder struct{ data []byte }

func (d *decoder) bad(what string) error {
	return fmt.Errorf("a damaged frame: %s cannot be read (%d bytes left)", what, len(d.data))
}

func (d *decoder) uvarint() (uint64, error) {
	x, n := binary.Uvarint(d.data)
	if n <= 0 {
		return 0, d.bad("a number")
	}
	d.data = d.data[n:]
	return x, nil
}

// length reads a count of what follows: no more than the bytes left,
// since each element takes at least one.
func (d *decoder) length() (int, error) {
	x, err := d.uvarint()
	if err != nil || x > uint64(len(d.data)) {
		return 0, d.bad("a length")
	}
	return int(x), nil
}

// preallocMax bounds what a slice or map is made with before its
// elements are decoded: a count is at most the bytes left, but an element
// can take far more memory than its byte on the wire (64 MiB of ones
// would ask for gigabytes of structs), so they grow with what is actually
// decoded (TestFrameCountClaimsNoMemory).
const preallocMax = 64

// sequence reads a slice's or map's count for v: ok is false when there
// is nothing more to decode (an error, or nil, which v is then set to).
func (d *decoder) sequence(v reflect.Value) (n int, ok bool, err error) {
	n, isNil, err := d.nilLength()
	if isNil {
		v.SetZero()
	}
	return n, err == nil && !isNil, err
}

func (d *decoder) nilLength() (n int, isNil bool, err error) {
	x, err := d.uvarint()
	if err != nil || x > uint64(len(d.data))+1 {
		return 0, false, d.bad("a length")
	}
	if x == 0 {
		return 0, true, nil
	}
	return int(x - 1), false, nil
}
