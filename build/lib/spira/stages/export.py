"""DVC stage export: the evaluated checkpoint -> models/export (model.onnx, model.json, MODEL_CARD.md)."""

from spira.errors import exit_on_user_error
from spira.pipeline.export import export_model
from spira.stages._cli import stage_params


def main() -> None:
    with exit_on_user_error():
        contract = export_model(stage_params(__doc__, "export"))
    decision = contract["decision"]
    print(f"exported {contract['model']['name']} version {contract['model']['version']} "
          f"(threshold {decision['threshold']:g}, inconclusive band {decision['inconclusive_band']})")


if __name__ == "__main__":
    main()
