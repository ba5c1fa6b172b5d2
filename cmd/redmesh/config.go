package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// applyConfigFile reads a YAML file whose keys are the command's flag names
// (without the dashes) and sets every flag not given on the command line, so
// that the file carries exactly the same settings as the flags and the
// command line wins. A list sets a repeatable flag once per element.
func applyConfigFile(flags *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var settings map[string]any
	if err := yaml.Unmarshal(b, &settings); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	for name, v := range settings {
		f := flags.Lookup(name)
		if f == nil || f.Hidden || name == "config" {
			return fmt.Errorf("config %s: unknown setting %q", path, name)
		}
		if f.Changed {
			continue
		}
		values := []any{v}
		if list, ok := v.([]any); ok {
			values = list
		}
		for _, item := range values {
			if err := flags.Set(name, fmt.Sprint(item)); err != nil {
				return fmt.Errorf("config %s: %s: %w", path, name, err)
			}
		}
	}
	return nil
}
