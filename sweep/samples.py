"""Tunes sampled from a trained model, written as ABC and, where abc2midi renders them, MIDI."""

import torch

from preprocessing.abc_tools import abc_to_midi


def write_samples(model, vocab, folder, best, device):
    """best.samples_per_temperature tunes at each of best.temperatures, each begun after an end-of-tune
    token, into folder as t<temperature>_<nn>.abc and .mid; returns one record per sample."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for temperature in best.temperatures:
        for index in range(best.samples_per_temperature):
            prompt = torch.tensor([[vocab.eot_id]], device=device)
            ids = model.generate(prompt, best.max_new_tokens, temperature=temperature,
                                 top_k=best.top_k or None)[0, 1:].tolist()
            ended = vocab.eot_id in ids
            ids = ids[: ids.index(vocab.eot_id)] if ended else ids
            name = f"t{temperature}_{index:02d}"
            abc = vocab.decode(ids)
            (folder / f"{name}.abc").write_text(abc)
            ok, message = abc_to_midi(abc, folder / f"{name}.mid")
            samples.append({"name": name, "temperature": temperature, "tokens": len(ids), "ended": ended,
                            "midi": ok, "midi_message": message})
    return samples
