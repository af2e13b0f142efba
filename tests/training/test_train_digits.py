"""snippets/training/train_digits.py and the claims of docs/training/index.md."""

import itertools
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from training import train_digits as td

from tests.support.pages import SNIPPETS

SCRIPT = SNIPPETS / "training" / "train_digits.py"
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """What the script does by default (--threads 1); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_script(*args, cwd):
    """The script as a reader runs it: a fresh interpreter in an empty folder."""
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def quiet_fit(criterion=None, **overrides):
    config = td.Config(device="cpu", **overrides)
    return td.fit(config, criterion=criterion, progress=False, log=lambda line: None)


# --- the script, end to end ------------------------------------------------------------------


def test_defaults_reach_97_percent_and_write_the_json(tmp_path):
    # --device auto (the default) falls back to the CPU on this machine (no CUDA, no MPS).
    result = run_script("--json", "result.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "result.json").read_text())
    for field in ("test_accuracy", "test_loss", "epochs", "seconds", "device", "history"):
        assert field in data
    assert data["device"] == "cpu"
    assert data["epochs"] == td.Config().epochs == len(data["history"])
    seeds = json.loads((SNIPPETS / "training" / "seeds_results.json").read_text())
    assert seeds["runs"][0]["seed"] == 0
    assert data["test_accuracy"] == seeds["runs"][0]["test_accuracy"]  # the page's seed table
    assert {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds"} <= set(data["history"][0])
    assert "test_accuracy" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # no temporary file left


def test_a_small_epoch_budget_reaches_95_percent(tmp_path):
    result = run_script("--epochs", "5", "--device", "cpu", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["epochs"] == 5 and data["test_accuracy"] >= 0.95


def test_amp_runs_on_cpu_with_bfloat16(tmp_path):
    args = ("--epochs", "2", "--device", "cpu", "--amp", "--loss", "nll", "--json", "r.json")
    result = run_script(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["amp"] == "bfloat16" and data["config"]["loss"] == "nll"
    assert data["test_accuracy"] > 0.8


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_an_unavailable_device_exits_2_names_the_available_ones_and_writes_nothing(
    tmp_path, device
):
    if device in td.available_devices():
        pytest.skip(f"{device} is available here")
    result = run_script("--device", device, "--json", "result.json", cwd=tmp_path)
    assert result.returncode == 2
    assert f"argument --device: device '{device}' is not available here" in result.stderr
    assert f"available: {', '.join(td.available_devices())}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_flag_gets_argparse_error(tmp_path):
    # Abbreviations are off: --epoch is unknown, not a silent --epochs.
    result = run_script("--epoch", "3", "--json", "result.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "unrecognized arguments: --epoch 3" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "argument --epochs: must be positive, got 0"),
        (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
        (["--batch-size", "-8"], "argument --batch-size: must be positive, got -8"),
        (["--lr", "0"], "argument --lr: must be positive, got 0"),
        (["--loss", "mse"], "argument --loss: invalid choice: 'mse'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
        (["--json", "no/such/folder/r.json"], "argument --json: folder 'no/such/folder'"),
    ],
)
def test_bad_values_get_argparse_errors(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        td.parse_args(args)
    assert stop.value.code == 2  # the process exit code
    assert message in capsys.readouterr().err


# --- devices and mixed precision ----------------------------------------------------------------


def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch):
    assert td.resolve_device("auto") == torch.device(td.available_devices()[0])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert td.resolve_device("auto") == CPU
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert td.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert td.resolve_device("auto") == torch.device("cuda")
    assert td.available_devices() == ["cuda", "mps", "cpu"]


def test_this_machine_falls_back_to_cpu():
    # The page is built and the tests run on machines without CUDA or MPS.
    assert td.available_devices() == ["cpu"]
    assert td.resolve_device("auto") == CPU
    with pytest.raises(ValueError, match=r"device 'cuda' is not available here; available: cpu"):
        td.resolve_device("cuda")


def test_cpu_autocast_gives_bfloat16_logits_and_the_loss_is_float32():
    torch.manual_seed(0)
    model, x, y = td.MLP(), torch.randn(8, 64), torch.randint(0, 10, (8,))
    assert td.autocast_dtype(CPU) == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x).dtype == torch.bfloat16  # nn.Linear runs in bfloat16 under autocast
    logits, loss = td.forward_loss(model, td.make_criterion("ce"), x, y, torch.bfloat16)
    assert logits.dtype == torch.float32 and loss.dtype == torch.float32
    _, full = td.forward_loss(model, td.make_criterion("ce"), x, y, None)
    assert loss.item() == pytest.approx(full.item(), rel=0.05)  # bfloat16 keeps about 3 digits
    assert not torch.equal(loss, full)


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), None)])
def test_cuda_older_than_ampere_gets_float16_not_emulated_bfloat16(
    monkeypatch, capability, expected
):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)

    def unsupported(*args, **kwargs):  # this machine has no CUDA: the bfloat16 probe fails
        raise RuntimeError("no CUDA here")

    monkeypatch.setattr(torch, "autocast", unsupported)
    assert td.autocast_dtype(torch.device("cuda")) is expected


def test_float16_amp_trains_with_an_enabled_grad_scaler_and_bfloat16_without(monkeypatch):
    created = []
    real = torch.amp.GradScaler

    def recording(*args, **kwargs):
        created.append(kwargs.get("enabled", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.amp, "GradScaler", recording)
    _, bf16 = quiet_fit(epochs=2, amp=True)
    assert bf16["amp"] == "bfloat16" and created == [False]
    monkeypatch.setattr(td, "autocast_dtype", lambda device: torch.float16)
    _, fp16 = quiet_fit(epochs=2, amp=True)  # CPU autocast supports float16 too
    assert fp16["amp"] == "float16" and created == [False, True]
    assert fp16["test_accuracy"] > 0.8
    assert all(math.isfinite(epoch["train_loss"]) for epoch in fp16["history"])


def test_a_disabled_grad_scaler_passes_everything_through():
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss = torch.tensor(2.5, requires_grad=True)
    assert scaler.scale(loss) is loss


def test_float16_rounds_gradients_below_half_of_two_to_the_minus_24_to_zero():
    fp16 = torch.finfo(torch.float16)
    smallest = fp16.tiny * fp16.eps  # the smallest subnormal
    assert smallest == 2.0**-24 == pytest.approx(5.96e-8, rel=1e-3)
    assert torch.tensor(2.9e-8).half().item() == 0.0  # below smallest / 2: rounds to 0
    assert torch.tensor(3.1e-8).half().item() == smallest  # above it: rounds up, not to 0
    assert fp16.tiny == pytest.approx(6.1e-5, rel=1e-2)  # below it, subnormals lose precision
    relative_error = abs(torch.tensor(1e-6).half().item() - 1e-6) / 1e-6
    assert relative_error > 10 * fp16.eps  # a subnormal keeps fewer digits than a normal number


def test_grad_scaler_step_synchronizes_to_check_for_inf_and_nan(monkeypatch):
    # scaler.step reads found_inf with .item(): a second host sync per step on the float16 path.
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    item_calls = []
    real_item = torch.Tensor.item

    def counting_item(self):
        item_calls.append(self.shape)
        return real_item(self)

    for enabled, expected in ((True, True), (False, False)):
        scaler = torch.amp.GradScaler("cpu", enabled=enabled)
        scaler.scale(model(torch.randn(3, 4)).sum()).backward()
        item_calls.clear()
        monkeypatch.setattr(torch.Tensor, "item", counting_item)
        scaler.step(optimizer)
        monkeypatch.setattr(torch.Tensor, "item", real_item)
        assert bool(item_calls) is expected, enabled


def test_an_untrained_model_starts_near_log_c():
    splits = td.load_splits()
    torch.manual_seed(0)  # as on the page
    logits = td.MLP()(splits["train"][0][:64])
    loss = td.make_criterion("ce")(logits, splits["train"][1][:64]).item()
    assert abs(loss - math.log(10)) < 0.005  # "within a few thousandths"


def test_a_starting_loss_far_below_log_c_means_a_broken_loss_not_a_label_leak():
    splits = td.load_splits()
    x, y = splits["train"][0][:512], splits["train"][1][:512]
    torch.manual_seed(0)
    leaked = torch.cat([x, nn.functional.one_hot(y, 10).float() * 3], dim=1)
    leak_loss = td.make_criterion("ce")(td.MLP(in_features=74)(leaked), y).item()
    assert abs(leak_loss - math.log(10)) < 0.05  # untrained: it cannot use the leaked label yet
    torch.manual_seed(0)
    raw_logits_into_nll = nn.NLLLoss()(td.MLP()(x), y).item()  # no log_softmax
    assert raw_logits_into_nll < math.log(10) - 2


@pytest.mark.skipif(
    not os.path.exists("/proc/cpuinfo")
    or any(flag in open("/proc/cpuinfo").read().split() for flag in ("avx512_bf16", "amx_bf16")),
    reason="the claim is about CPUs without bfloat16 instructions",
)
def test_bfloat16_autocast_is_slower_than_float32_on_a_cpu_without_bfloat16_instructions():
    seconds = {False: [], True: []}
    for _ in range(3):  # alternately, as the page measures it
        for amp in (False, True):
            _, run = quiet_fit(epochs=2, amp=amp)
            assert run["amp"] == ("bfloat16" if amp else None)
            seconds[amp] += [epoch["seconds"] for epoch in run["history"]]
    fp32, bf16 = (sorted(seconds[amp])[len(seconds[amp]) // 2] for amp in (False, True))
    assert bf16 > 1.5 * fp32


def test_weight_decay_has_no_option_and_the_options_default_to_config():
    parser, defaults = td.build_parser(), td.Config()
    options = {flag for action in parser._actions for flag in action.option_strings}
    assert "--weight-decay" not in options and "weight_decay" in vars(defaults)
    parsed = vars(parser.parse_args([]))
    for field in ("epochs", "batch_size", "lr", "seed", "loss", "device", "amp"):
        assert parsed[field] == getattr(defaults, field), field
    # "--threads and --json exist only on the command line".
    assert set(parsed) - set(vars(defaults)) == {"threads", "json"}


def test_autocast_dtype_is_none_where_autocast_does_not_support_bfloat16(monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("autocast is not supported here")

    monkeypatch.setattr(torch, "autocast", unsupported)
    assert td.autocast_dtype(CPU) is None


# --- data -----------------------------------------------------------------------------------


def test_split_is_stratified_70_10_20_and_standardised_with_training_statistics():
    splits = td.load_splits()
    sizes = {name: len(y) for name, (x, y) in splits.items()}
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    everything = torch.cat([y for _, y in splits.values()])
    for name, (_, y) in splits.items():  # every class in (almost) the same proportion
        expected = torch.bincount(everything) * len(y) / len(everything)
        assert (torch.bincount(y) - expected).abs().max() <= 1.5, name
    x_train, x_val = splits["train"][0], splits["val"][0]
    assert x_train.mean(dim=0).abs().max() < 1e-5
    assert x_val.mean(dim=0).abs().max() > 0.1  # validation statistics were not used
    assert splits["train"][1].dtype == torch.int64 and x_train.dtype == torch.float32


def test_the_loader_generator_makes_the_shuffle_reproducible():
    split = td.load_splits()["train"]

    def first_batch(seed):
        loader = td.make_loader(split, 64, CPU, td.seed_everything(seed))
        return next(iter(loader))[1]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))
    assert not td.make_loader(split, 64, CPU).pin_memory  # pinned memory only for CUDA


# --- losses ---------------------------------------------------------------------------------


def test_ce_and_logsoftmax_nll_are_bit_for_bit_equal():
    torch.manual_seed(0)
    logits, target = torch.randn(64, 10), torch.randint(0, 10, (64,))
    assert torch.equal(
        td.make_criterion("ce")(logits, target), td.make_criterion("nll")(logits, target)
    )
    with pytest.raises(ValueError, match="loss must be 'ce' or 'nll', got 'mse'"):
        td.make_criterion("mse")


def test_ce_and_nll_runs_give_the_same_losses():
    _, ce = quiet_fit(epochs=3, loss="ce")
    _, nll = quiet_fit(epochs=3, loss="nll")
    keys = ("train_loss", "val_loss", "val_accuracy")
    assert [[h[k] for k in keys] for h in ce["history"]] == [
        [h[k] for k in keys] for h in nll["history"]
    ]
    assert ce["test_loss"] == nll["test_loss"]


def test_same_seed_same_run_other_seed_other_run():
    _, first = quiet_fit(epochs=2, seed=0)
    _, again = quiet_fit(epochs=2, seed=0)
    _, other = quiet_fit(epochs=2, seed=1)
    assert first["history"][-1]["train_loss"] == again["history"][-1]["train_loss"]
    assert first["history"][-1]["train_loss"] != other["history"][-1]["train_loss"]


def test_the_best_validation_epoch_is_kept_and_tested():
    model, result = quiet_fit(epochs=8)
    best = max(result["history"], key=lambda h: (h["val_accuracy"], -h["val_loss"]))
    assert result["best_epoch"] == best["epoch"]
    splits = td.load_splits()
    val = td.make_loader(splits["val"], 512, CPU)
    assert td.evaluate(model, val, nn.CrossEntropyLoss(), CPU, None)[1] == best["val_accuracy"]


def test_raw_logits_into_nllloss_train_to_a_negative_loss_and_collapse():
    # The classic mistake of the notebook: no log-softmax before NLLLoss.
    _, wrong = quiet_fit(epochs=6, criterion=nn.NLLLoss())
    losses = [h["train_loss"] for h in wrong["history"]]
    assert losses[0] < 0 and losses[-1] < -100  # unbounded below: -mean of the true-class logit
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert wrong["history"][-1]["val_accuracy"] <= 0.12  # chance level for 10 classes
    assert wrong["best_epoch"] <= 2 and wrong["test_accuracy"] < 0.9  # an early epoch is kept
    # The loss it optimises is exactly minus the mean true-class logit.
    torch.manual_seed(0)
    logits, target = torch.randn(16, 10), torch.randint(0, 10, (16,))
    expected = -logits[torch.arange(16), target].mean()
    assert torch.allclose(nn.NLLLoss()(logits, target), expected, rtol=0, atol=1e-6)


# --- files ------------------------------------------------------------------------------------


def test_json_is_written_atomically(tmp_path):
    path = tmp_path / "result.json"
    td.write_json_atomic(path, {"test_accuracy": 0.5})
    assert json.loads(path.read_text()) == {"test_accuracy": 0.5}
    with pytest.raises(TypeError, match="not JSON serializable"):
        td.write_json_atomic(path, {"test_accuracy": 0.9, "model": object()})
    assert json.loads(path.read_text()) == {"test_accuracy": 0.5}  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left


def test_main_restores_the_thread_count(tmp_path):
    torch.set_num_threads(2)
    assert td.main(["--epochs", "1", "--device", "cpu", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 2


def test_eval_mode_turns_dropout_off_and_no_grad_builds_no_graph():
    torch.manual_seed(0)
    model, x = td.MLP(), torch.randn(16, 64)
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout draws new masks
    model.eval()
    assert torch.equal(model(x), model(x))
    with torch.no_grad():
        assert model(x).grad_fn is None
    assert model(x).grad_fn is not None


def test_the_last_training_mini_batch_is_smaller():
    split = td.load_splits()["train"]
    sizes = [len(y) for _, y in td.make_loader(split, 64, CPU, td.seed_everything(0))]
    assert set(sizes[:-1]) == {64} and sizes[-1] == len(split[1]) % 64 == 41


def test_bfloat16_has_the_exponent_range_of_float32_and_float16_does_not():
    bf16, fp32, fp16 = (torch.finfo(t) for t in (torch.bfloat16, torch.float32, torch.float16))
    assert bf16.max == pytest.approx(fp32.max, rel=0.01) and bf16.tiny == fp32.tiny
    assert fp16.max == 65504.0 and fp16.tiny > 1e-5
