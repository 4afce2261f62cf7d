package config

import (
	"os"
	"testing"
)

// The documented example must stay a valid config.
func TestDocsExampleIsValid(t *testing.T) {
	data, err := os.ReadFile("../../docs/keygate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "docs/keygate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
