package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/redmesh/redmesh/node"
)

// Flag values read as Redis reads its configuration, so that a Redis
// user's habits work: booleans as yes/no, sizes with Redis's units,
// durations as plain seconds.

// yesNo is a boolean flag that also reads yes and no, as redis.conf does.
type yesNo struct{ p *bool }

func (v yesNo) String() string {
	if v.p != nil && *v.p {
		return "yes"
	}
	return "no"
}

func (v yesNo) Set(s string) error {
	b, err := parseYesNo(s)
	if err != nil {
		return err
	}
	*v.p = b
	return nil
}

func (v yesNo) Type() string { return "yes|no" }

// parseYesNo reads yes/no, and Go's true/false/1/0.
func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q: want yes or no", s)
	}
	return b, nil
}

// boolFlag adds a yes/no flag. A switch (a flag that is usually given bare,
// as --no-mesh) takes yes when given without a value, and any value only
// after '=' (--mdns=no); a setting (as --protected-mode, a redis.conf
// name) always takes its value, as redis-server's command line does
// (--protected-mode no).
func boolFlag(fl *pflag.FlagSet, p *bool, name string, def, isSwitch bool, usage string) {
	*p = def
	f := fl.VarPF(yesNo{p}, name, "", usage)
	if isSwitch {
		f.NoOptDefVal = "yes"
	}
}

// parseSize reads a size as Redis does: a number with an optional unit,
// k/m/g for powers of 1000 and kb/mb/gb for powers of 1024 (1gb is 1024³),
// in any case; other units humanize knows (MiB, GiB...) are read as it
// reads them.
func parseSize(s string) (int64, error) {
	if n, err := node.ParseMemory(strings.TrimSpace(s)); err == nil {
		return n, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a size such as 512mb, 1gb or 100000", s)
	}
	if n > 1<<62 {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return int64(n), nil
}

// seconds is a duration flag that also reads a plain number as seconds, as
// Redis's timeout does.
type seconds struct{ p *time.Duration }

func (v seconds) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v seconds) Set(s string) error {
	d, err := parseSeconds(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func (v seconds) Type() string { return "duration" }

func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(1<<63-1)/int64(time.Second) {
			return 0, fmt.Errorf("%q: out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want seconds or a duration such as 1m30s", s)
	}
	return d, nil
}

// durationFlag adds a duration flag that also reads plain seconds.
func durationFlag(fl *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fl.Var(seconds{p}, name, usage)
}
