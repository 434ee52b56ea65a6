"""`torch.utils.tensorboard.SummaryWriter`: training curves for TensorBoard.

    from smolgrad.utils.tensorboard import SummaryWriter   # or torch.utils.tensorboard
    writer = SummaryWriter("runs/exp1")
    writer.add_scalar("loss/train", loss, step)             # loss may be a 0-d Tensor
    writer.close()                                           # then: tensorboard --logdir runs

The event files are written by tensorboardX, a maintained library for TensorBoard's file
format; this class only turns smolgrad Tensors into NumPy arrays and Python numbers and
keeps PyTorch's method names and arguments. Install it with the optional extra:

    pip install "smolgrad[tensorboard]"       # or: pip install tensorboardX

Without it, importing this module raises ImportError with that command, as importing
`torch.utils.tensorboard` does when TensorBoard is missing. `add_graph` is not provided
(it traces a PyTorch model): it raises NotImplementedError. The tensorboardX writer itself
is `writer.tbx_writer`, for anything else it offers.
"""

from __future__ import annotations

from ..engine import Tensor

try:
    import tensorboardX
except ImportError as error:
    raise ImportError(
        "torch.utils.tensorboard (smolgrad.utils.tensorboard) needs the tensorboardX package: "
        "pip install \"smolgrad[tensorboard]\" (or: pip install tensorboardX)") from error

__all__ = ["SummaryWriter"]


def _host(value):
    """A Tensor as a NumPy array (detached, on the CPU); anything else unchanged."""
    return value.detach().numpy() if isinstance(value, Tensor) else value


def _number(value):
    """A Tensor of one element as a Python number; anything else unchanged."""
    return value.item() if isinstance(value, Tensor) else value


class SummaryWriter:
    """Write TensorBoard event files into `log_dir` (default: runs/DATETIME_HOSTNAME).

    comment: suffix of the default log_dir. purge_step, max_queue, flush_secs,
    filename_suffix: as in PyTorch (passed to tensorboardX). Usable as a context manager.
    """

    def __init__(self, log_dir: str | None = None, comment: str = "", purge_step=None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = ""):
        self.tbx_writer = tensorboardX.SummaryWriter(
            logdir=log_dir, comment=comment, purge_step=purge_step, max_queue=max_queue,
            flush_secs=flush_secs, filename_suffix=filename_suffix)
        self.log_dir = self.tbx_writer.logdir

    def get_logdir(self) -> str:
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """One point of the curve `tag`: `scalar_value` (number or one-element Tensor)."""
        self.tbx_writer.add_scalar(tag, _number(scalar_value), _number(global_step),
                                          walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None,
                    walltime=None) -> None:
        """Several curves in one chart: {name: number or one-element Tensor}. Each curve is
        written under log_dir/main_tag/name (tensorboardX's layout; PyTorch's is
        log_dir/main_tag_name); TensorBoard shows the same chart."""
        values = {name: _number(value) for name, value in tag_scalar_dict.items()}
        self.tbx_writer.add_scalars(main_tag, values, _number(global_step), walltime)

    def add_histogram(self, tag: str, values, global_step=None, bins: str = "tensorflow",
                      walltime=None, max_bins=None) -> None:
        self.tbx_writer.add_histogram(tag, _host(values), _number(global_step), bins,
                                             walltime, max_bins)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None,
                  dataformats: str = "CHW") -> None:
        """One image: values in [0, 1] (float) or [0, 255] (integers), laid out as
        `dataformats` ("CHW", "HWC" or "HW")."""
        self.tbx_writer.add_image(tag, _host(img_tensor), _number(global_step),
                                         walltime, dataformats)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None,
                   dataformats: str = "NCHW") -> None:
        self.tbx_writer.add_images(tag, _host(img_tensor), _number(global_step),
                                          walltime, dataformats)

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True,
                   walltime=None) -> None:
        """A matplotlib figure (or a list of them), rendered to an image."""
        self.tbx_writer.add_figure(tag, figure, _number(global_step), close, walltime)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        self.tbx_writer.add_text(tag, text_string, _number(global_step), walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None,
                    run_name: str | None = None, global_step=None) -> None:
        """A run's hyperparameters and its final metrics (the HParams tab)."""
        hparams = {name: _number(value) for name, value in hparam_dict.items()}
        metrics = {name: _number(value) for name, value in metric_dict.items()}
        self.tbx_writer.add_hparams(hparams, metrics, name=run_name,
                                           global_step=_number(global_step))

    def add_embedding(self, mat, metadata=None, label_img=None, global_step=None,
                      tag: str = "default", metadata_header=None) -> None:
        self.tbx_writer.add_embedding(_host(mat), metadata, _host(label_img),
                                             _number(global_step), tag, metadata_header)

    def add_pr_curve(self, tag: str, labels, predictions, global_step=None,
                     num_thresholds: int = 127, weights=None, walltime=None) -> None:
        self.tbx_writer.add_pr_curve(tag, _host(labels), _host(predictions),
                                            _number(global_step), num_thresholds,
                                            _host(weights), walltime)

    def add_graph(self, model, input_to_model=None, verbose: bool = False,
                  use_strict_trace: bool = True) -> None:
        """Not provided: TensorBoard's graph comes from tracing a PyTorch model."""
        raise NotImplementedError(
            "SummaryWriter.add_graph: smolgrad cannot trace a model into TensorBoard's graph "
            "format; use smolgrad.viz.draw_graph(output) to draw a smolgrad graph")

    def flush(self) -> None:
        self.tbx_writer.flush()

    def close(self) -> None:
        self.tbx_writer.close()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        self.close()
        return False
