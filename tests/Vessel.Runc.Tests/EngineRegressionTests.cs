using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

/// <summary>Bugs that running vessel-runc under podman and containerd found (tests/Vessel.Integration.Tests
/// has the end-to-end scenarios). Each test drives vessel-runc the way the engine did, so it needs neither.</summary>
public sealed class EngineRegressionTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Delete_force_of_a_missing_container_succeeds_as_in_runc()
    {
        // podman runs `delete --force ID` after every failed create, whose container is already gone; runc
        // exits 0 there, and a failure made podman log "Removing container … from runtime after creation failed".
        var id = NewId("missing");
        var r = Runc["delete", "--force", id];
        Assert.True(r.ExitCode == 0 && r.Stderr.Length == 0, r.ToString());
        // Without --force it still reports the missing container, and a bad id is still refused.
        Runc["delete", id].FailsWith(1, $"container {id} does not exist");
        Assert.NotEqual(0, Runc["delete", "--force", "../etc"].ExitCode);
    }
}
