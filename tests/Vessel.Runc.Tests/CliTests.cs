using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

/// <summary>Commands that start no container.</summary>
public sealed class CliTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Features_prints_json_with_the_spec_versions()
    {
        var r = Runc["features"].Ok();
        var json = JsonNode.Parse(r.Stdout)!;
        Assert.False(string.IsNullOrEmpty((string?)json["ociVersionMax"]), r.Stdout);
        Assert.False(string.IsNullOrEmpty((string?)json["ociVersionMin"]), r.Stdout);
        Assert.Contains("pid", json["linux"]!["namespaces"]!.AsArray().Select(n => (string?)n));
    }

    [Fact]
    public void Version_prints_the_version()
    {
        foreach (var flag in new[] { "--version", "-v" })
        {
            var r = Runc.Invoke([flag], globalOnly: true).Ok();
            Assert.StartsWith("vessel-runc version ", r.Stdout);
            Assert.Contains("spec: ", r.Stdout);
        }
    }

    [Fact]
    public void Spec_writes_a_config_and_refuses_to_overwrite_it()
    {
        var dir = NewTempDir("spec");
        Runc["spec", "--bundle", dir].Ok();
        var written = File.ReadAllText(Path.Combine(dir, "config.json"));
        var json = JsonNode.Parse(written)!;
        Assert.Equal("sh", (string?)json["process"]!["args"]![0]);
        Assert.True((bool)json["process"]!["terminal"]!);

        Runc["spec", "--bundle", dir].FailsWith(1, "config.json", "exists");
        Assert.Equal(written, File.ReadAllText(Path.Combine(dir, "config.json")));
    }

    [Fact]
    public void Unknown_command_and_unknown_flag_fail_with_one_line()
    {
        Runc["frobnicate"].FailsWith(1, "frobnicate");
        Runc["list", "--no-such-flag"].FailsWith(1, "no-such-flag");
    }

    [Fact]
    public void List_of_an_empty_root_is_an_empty_json_array()
    {
        var r = new RuncCli(Env, $"/run/vessel-test-empty-{Guid.NewGuid():N}")["list", "--format", "json"].Ok();
        var json = JsonNode.Parse(r.Stdout);
        Assert.True(json is null || json.AsArray().Count == 0, r.ToString());
    }
}
