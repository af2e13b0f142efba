"""Soft nearest neighbor loss: NCA's objective on a batch of embeddings, with a temperature.

Importing this file defines soft_nearest_neighbor_loss and needs only torch. Running it also
prints the examples and plots of docs/losses/neighbors.md (those need matplotlib and scikit-learn).
"""

# --8<-- [start:checks]
import torch

LOW_PRECISION = (torch.float16, torch.bfloat16)


def describe(value):
    return str(value.dtype) if isinstance(value, torch.Tensor) else type(value).__name__


def check_embeddings_and_labels(embeddings, labels):
    """Raise a ValueError that names the argument at fault."""
    if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a floating-point tensor, got {describe(embeddings)}")
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must have shape (B, D), got {tuple(embeddings.shape)}")
    integer = isinstance(labels, torch.Tensor) and not (
        labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool
    )
    if not integer:
        raise ValueError(f"labels must hold integer class labels, got {describe(labels)}")
    if tuple(labels.shape) != (embeddings.shape[0],):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}, but embeddings of shape "
            f"{tuple(embeddings.shape)} needs labels of shape ({embeddings.shape[0]},)"
        )


# --8<-- [end:checks]


# --8<-- [start:soft_nearest_neighbor]
def soft_nearest_neighbor_loss(embeddings, labels, *, temperature=1.0):
    """-mean_i log( sum_{j != i, y_j = y_i} e^{-d_ij / T} / sum_{k != i} e^{-d_ik / T} ).

    d_ij is the squared Euclidean distance. A sample with no other sample of its class in the
    batch has no defined term: it is left out of the mean (it still counts as a neighbor of
    the others). If no sample has a partner, the loss is undefined and a ValueError is raised.
    """
    check_embeddings_and_labels(embeddings, labels)
    if not temperature > 0:  # also rejects NaN
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    x = embeddings.float() if embeddings.dtype in LOW_PRECISION else embeddings
    x = x - x.mean(dim=0)  # the same distances, with less cancellation below
    squared_norm = x.pow(2).sum(dim=1)
    distance = (squared_norm[:, None] + squared_norm[None, :] - 2 * x @ x.T).clamp_min(0)
    logits = -distance / temperature

    self_pair = torch.eye(len(x), dtype=torch.bool, device=x.device)
    partner = (labels[:, None] == labels[None, :]) & ~self_pair
    has_partner = partner.any(dim=1)
    message = (
        "labels: no sample has another sample of the same class in the batch, "
        "so the soft nearest neighbor loss is undefined"
    )
    if torch.compiler.is_compiling() or labels.device.type in ("cuda", "mps", "meta"):
        # Compiled, reading the data would break the graph; on CUDA or MPS, the host would wait
        # for the device. torch._assert_async checks on the device (CPU, CUDA, MPS kernels).
        torch._assert_async(has_partner.any(), message)
    elif not has_partner.any():  # eager: CPU (no device to wait for), or another device
        raise ValueError(message)
    log_all = logits.masked_fill(self_pair, float("-inf")).logsumexp(dim=1)
    # A sample without a partner gets log_same = log_all (a zero term) and is left out of the
    # mean by dividing by the number of samples that have one: no boolean indexing, whose
    # output size depends on the data.
    same = partner | (~has_partner[:, None] & ~self_pair)
    log_same = logits.masked_fill(~same, float("-inf")).logsumexp(dim=1)
    loss = (log_all - log_same).sum() / has_partner.sum()
    return loss.to(embeddings.dtype)


# --8<-- [end:soft_nearest_neighbor]


if __name__ == "__main__":
    # --8<-- [start:example]
    import math

    import torch

    torch.manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    labels = torch.arange(3).repeat_interleave(8)  # 3 classes, 8 samples each
    noise = torch.randn(24, 2)
    separated = centers[labels] + 0.5 * noise  # tight, well-separated clusters
    entangled = centers[labels] + 3.0 * noise  # the same centers, heavily mixed
    unrelated = 3.0 * noise  # no centers: the positions carry no information about the labels
    examples = {"separated": separated, "entangled": entangled, "unrelated": unrelated}
    for name, points in examples.items():
        print(f"{name:10}:", soft_nearest_neighbor_loss(points, labels).item())
    print("log(23/7) :", math.log(23 / 7))
    # --8<-- [end:example]

    # --8<-- [start:lonely]
    lonely_labels = labels.clone()
    lonely_labels[0] = 3  # class 3 has a single sample in the batch
    print("one lonely sample:", soft_nearest_neighbor_loss(separated, lonely_labels).item())
    try:
        soft_nearest_neighbor_loss(separated[:3], torch.tensor([0, 1, 2]))
    except ValueError as error:
        print(f"{type(error).__name__}: {error}")
    # --8<-- [end:lonely]

    # --8<-- [start:temperature_plot]
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "neighbors-temperature"
    temperatures = torch.logspace(-2, 3, 101)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, points in {"separated": separated, "entangled": entangled}.items():
        values = [soft_nearest_neighbor_loss(points, labels, temperature=t) for t in temperatures]
        ax.plot(temperatures, values, label=name)
    ax.axhline(math.log(23 / 7), color="gray", linestyle="--", label="log(23/7)")
    ax.set(xscale="log", yscale="log", ylim=(1e-4, None), xlabel="$T$", ylabel="loss")
    ax.legend()
    ax.grid(alpha=0.3)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:temperature_plot]

    # --8<-- [start:nca]
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    digits = load_digits()  # 1797 images of 8x8 pixels, 10 classes
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.3, random_state=0, stratify=digits.target
    )

    def knn_accuracy(train_points, test_points):
        knn = KNeighborsClassifier(n_neighbors=1).fit(train_points, y_train)
        return knn.score(test_points, y_test)

    # NCA: learn a linear map A (64 -> 2) so that 1-NN works in the 2-D space A x.
    torch.manual_seed(0)
    A = torch.nn.Linear(64, 2, bias=False)
    optimizer = torch.optim.Adam(A.parameters(), lr=0.05)
    inputs = torch.tensor(X_train, dtype=torch.float32)
    targets = torch.tensor(y_train)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is faster
    for _ in range(500):
        batch = torch.randperm(len(inputs))[:128]  # random mini-batch of 128 samples
        loss = soft_nearest_neighbor_loss(A(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)

    with torch.no_grad():
        nca_train = A(inputs).numpy()
        nca_test = A(torch.tensor(X_test, dtype=torch.float32)).numpy()
    pca = PCA(n_components=2).fit(X_train)
    pca_accuracy = knn_accuracy(pca.transform(X_train), pca.transform(X_test))
    print("1-NN accuracy, 64 pixels      :", round(knn_accuracy(X_train, X_test), 3))
    print("1-NN accuracy, PCA 2-D        :", round(pca_accuracy, 3))
    print("1-NN accuracy, learned 2-D map:", round(knn_accuracy(nca_train, nca_test), 3))
    with torch.no_grad():
        whole = soft_nearest_neighbor_loss(A(inputs), targets)
    print("loss, whole training set      :", round(whole.item(), 3))
    # --8<-- [end:nca]

    # --8<-- [start:nca_plot]
    plt.rcParams["svg.hashsalt"] = "neighbors-nca"
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    for ax, points, title in (
        (left, pca.transform(X_test), "PCA"),
        (right, nca_test, "soft nearest neighbor (NCA)"),
    ):
        scatter = ax.scatter(points[:, 0], points[:, 1], c=y_test, cmap="tab10", s=6)
        ax.set(title=title, xticks=[], yticks=[])
    fig.colorbar(scatter, ax=[left, right], ticks=range(10), label="$y$")
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    print(buffer.getvalue())
    # --8<-- [end:nca_plot]
