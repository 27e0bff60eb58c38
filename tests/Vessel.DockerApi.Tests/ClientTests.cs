using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using Vessel.Cli.Tests;

namespace Vessel.DockerApi.Tests;

/// <summary>Registries through the docker CLI, and the SDKs: docker-py (Debian's python3-docker) and Docker.DotNet.</summary>
[Collection("docker")]
public sealed class ClientTests(DockerFixture f)
{
    private static Binaries.Result Ok(Binaries.Result r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    [Fact]
    public void PushAndPullThroughALocalRegistryWithProgress()
    {
        using var registry = new RegistryProcess();
        string name = $"{registry.Host}/vessel/bb:1";
        Ok(f.Docker("tag", DockerFixture.Image, name));
        var push = Ok(f.Docker("push", name));
        Assert.Contains($"The push refers to repository [{registry.Host}/vessel/bb]", push.Out);
        Assert.Contains("Pushed", push.Out);
        Assert.Matches(@"1: digest: sha256:[0-9a-f]{64} size: \d+", push.Out);
        Ok(f.Docker("rmi", name));

        var pull = Ok(f.Docker("pull", name));
        Assert.Contains("1: Pulling from vessel/bb", pull.Out);
        Assert.Matches("[0-9a-f]{12}: (Pull complete|Already exists)", pull.Out); // the layer is bb:1's, which stays
        Assert.Contains("Digest: sha256:", pull.Out);
        Assert.Contains($"Status: Downloaded newer image for {name}", pull.Out);
        Assert.Contains($"Status: Image is up to date for {name}", Ok(f.Docker("pull", name)).Out);
        Assert.Equal("pulled\n", Ok(f.Docker("run", "--rm", name, "echo", "pulled")).Out);
        Ok(f.Docker("rmi", name));

        var missing = f.Docker("pull", $"{registry.Host}/vessel/nope:1");
        Assert.NotEqual(0, missing.Code);
        Assert.Contains("not found", missing.Err);
        // docker run pulls what it does not have (the create answers 404 first).
        Ok(f.Docker("tag", DockerFixture.Image, name));
        Ok(f.Docker("push", name));
        Ok(f.Docker("rmi", name));
        var run = Ok(f.Docker("run", "--rm", name, "echo", "auto-pulled"));
        Assert.Contains("Unable to find image", run.Err);
        Assert.Equal("auto-pulled\n", run.Out);
        Ok(f.Docker("rmi", name));
    }

    [Fact]
    public void DockerPy()
    {
        string script = $$"""
            import docker
            c = docker.DockerClient(base_url="{{f.Host}}")
            assert c.version()["ApiVersion"] == "1.41", c.version()
            print(c.containers.run("{{DockerFixture.Image}}", ["sh", "-c", "echo from docker-py"], remove=True).decode(), end="")
            k = c.containers.run("{{DockerFixture.Image}}", ["sleep", "30"], detach=True, name="py-detached", labels={"by": "py"})
            assert [x.name for x in c.containers.list(filters={"label": "by=py"})] == ["py-detached"]
            r = k.exec_run(["sh", "-c", "echo exec from py; exit 2"])
            print(r.exit_code, r.output.decode(), end="")
            k.kill()
            print(k.wait()["StatusCode"])
            k.remove()
            print(sorted(t for i in c.images.list() for t in i.tags))
            """;
        var r = Binaries.Run("python3", ["-c", script], timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal(["from docker-py", "2 exec from py", "137", "['bb:1']"], r.OutLines);
    }

    [Fact]
    public async Task DockerDotNet()
    {
        using var client = new DockerClientConfiguration(new Uri(f.Host)).CreateClient();
        VersionResponse v = await client.System.GetVersionAsync();
        Assert.Equal("1.41", v.APIVersion);
        var created = await client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = DockerFixture.Image, Name = "dotnet-client", Cmd = ["sh", "-c", "echo from Docker.DotNet; exit 5"],
            Labels = new Dictionary<string, string> { ["by"] = "dotnet" },
        });
        try
        {
            Assert.True(await client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters()));
            ContainerWaitResponse w = await client.Containers.WaitContainerAsync(created.ID);
            Assert.Equal(5, w.StatusCode);
            ContainerInspectResponse inspect = await client.Containers.InspectContainerAsync(created.ID);
            Assert.Equal("/dotnet-client", inspect.Name);
            Assert.Equal("exited", inspect.State.Status);
            var list = await client.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true, Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { ["by=dotnet"] = true } },
            });
            Assert.Equal(created.ID, Assert.Single(list).ID);
            using var logs = await client.Containers.GetContainerLogsAsync(created.ID, false, new ContainerLogsParameters { ShowStdout = true, ShowStderr = true });
            (string stdout, string stderr) = await logs.ReadOutputToEndAsync(CancellationToken.None);
            Assert.Equal("from Docker.DotNet\n", stdout);
            Assert.Equal("", stderr);
            var images = await client.Images.ListImagesAsync(new ImagesListParameters());
            Assert.Contains(images, i => i.RepoTags.Contains(DockerFixture.Image));
        }
        finally
        {
            await client.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true });
        }
        _ = Encoding.UTF8;
    }
}
