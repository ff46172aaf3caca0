// Package bytesjson is encoding/json for strings that are bytes: paths,
// arguments and variables need not be UTF-8, and encoding/json would
// replace each invalid byte with U+FFFD. A leaf used by everything hutch
// sends as JSON between its own processes (the plan to hutch-init and
// stage2, the layers helper's requests, a session's metadata).
package bytesjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Paths are bytes, and JSON strings are Unicode: encoding/json replaces
// each byte of invalid UTF-8 with U+FFFD, so a project directory named
// "\xff\xfe" reached hutch-init as "\uFFFD\uFFFD" and could not be bound,
// and a --hide of such a path hid a path that does not exist. Everything
// hutch sends as JSON between its own processes (the plan to init and
// stage2, requests to hutch-layers, a session's metadata) goes through
// Marshal and Unmarshal: a string that is not valid UTF-8 travels
// as Mark followed by its bytes in base64; every other string, and so
// every golden plan, is as encoding/json writes it. A string that itself
// begins with Mark (it starts with a NUL, which no path, argument or
// variable can hold) is encoded too, so decoding is exact.
// Mark begins a string that travels as base64.
const Mark = "\x00hutch-bytes:"

func wireEncode(s string) (string, error) {
	if utf8.ValidString(s) && !strings.HasPrefix(s, Mark) {
		return s, nil
	}
	return Mark + base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func wireDecode(s string) (string, error) {
	b64, ok := strings.CutPrefix(s, Mark)
	if !ok {
		return s, nil
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("a byte string on the wire: %w", err)
	}
	return string(b), nil
}

// Marshal is json.Marshal with strings kept as bytes.
func Marshal(v any) ([]byte, error) {
	// The common case, every string UTF-8 and none led by Mark, costs one
	// encoding/json pass: its output then holds neither the escape it
	// writes for an invalid byte nor Mark's escaped form. Either may also
	// appear for another reason (a string that holds a backslash and
	// "ufffd"): the careful pass below then gives the exact answer anyway.
	data, err := json.Marshal(v)
	if err != nil || !mayHoldBytes(data) {
		return data, err
	}
	c, err := mapStrings(reflect.ValueOf(v), wireEncode)
	if err != nil {
		return nil, err
	}
	return json.Marshal(c.Interface())
}

// mayHoldBytes reports whether encoding/json's output data may come from
// a string that wireEncode would change: one with a byte that is not
// UTF-8 (written as \ufffd) or one that begins with Mark (its NUL
// written as \u0000).
func mayHoldBytes(data []byte) bool {
	return bytes.Contains(data, []byte(`\ufffd`)) || bytes.Contains(data, []byte(markJSON))
}

// markJSON is Mark as encoding/json writes it inside a string.
const markJSON = `\u0000hutch-bytes:`

// Unmarshal is json.Unmarshal that restores what Marshal encoded.
func Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	if !bytes.Contains(data, []byte(markJSON)) {
		return nil
	}
	rv := reflect.ValueOf(v).Elem()
	c, err := mapStrings(rv, wireDecode)
	if err != nil {
		return err
	}
	rv.Set(c)
	return nil
}

// mapStrings returns a copy of v with f applied to every string reachable
// through exported fields, pointers, slices, arrays, maps (keys too) and
// interfaces. What holds no string is shared, not copied.
func mapStrings(v reflect.Value, f func(string) (string, error)) (reflect.Value, error) {
	switch v.Kind() {
	case reflect.String:
		s, err := f(v.String())
		out := reflect.New(v.Type()).Elem()
		out.SetString(s)
		return out, err
	case reflect.Pointer:
		if v.IsNil() {
			return v, nil
		}
		e, err := mapStrings(v.Elem(), f)
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(e)
		return out, err
	case reflect.Interface:
		if v.IsNil() {
			return v, nil
		}
		e, err := mapStrings(v.Elem(), f)
		out := reflect.New(v.Type()).Elem()
		out.Set(e)
		return out, err
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			e, err := mapStrings(v.Field(i), f)
			if err != nil {
				return v, err
			}
			out.Field(i).Set(e)
		}
		return out, nil
	case reflect.Slice:
		if v.IsNil() || scalarKind(v.Type().Elem().Kind()) {
			return v, nil
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			e, err := mapStrings(v.Index(i), f)
			if err != nil {
				return v, err
			}
			out.Index(i).Set(e)
		}
		return out, nil
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := 0; i < v.Len(); i++ {
			e, err := mapStrings(v.Index(i), f)
			if err != nil {
				return v, err
			}
			out.Index(i).Set(e)
		}
		return out, nil
	case reflect.Map:
		if v.IsNil() {
			return v, nil
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			k, err := mapStrings(it.Key(), f)
			if err != nil {
				return v, err
			}
			e, err := mapStrings(it.Value(), f)
			if err != nil {
				return v, err
			}
			out.SetMapIndex(k, e)
		}
		return out, nil
	}
	return v, nil
}

func scalarKind(k reflect.Kind) bool {
	return k >= reflect.Bool && k <= reflect.Complex128
}
