"""
Application profiles as physics: what the arm's workplace does to it and to its sensors.

Each profile (names and sensed quantities: softmaint_core.profiles) adds drivers that the
environment reading does not carry, as gains on the rate laws of degradation.py and as two slow
material states, and changes the scene and the field sensors:

deep_sea   Ambient pressure drives sea water into the elastomer (permeation grows with pressure):
           ingress I = salinity / 35 g/kg * (1 + P / 10 MPa); fatigue gain 1 + 0.3 I (swelling
           plasticises the skin), crack gain 1 + 0.6 I (stress-corrosion cracking), leak gain
           1 + 0.4 I (sea water pushes through punctures). At 300 bar I = 4: fatigue x2.2, crack
           x3.4, leak x2.6; the cold (2-4 degC) slows the Arrhenius term (x0.36) and immersion
           sets humidity to 1. Camera: only the robot's lamp (light 0.12-0.3, blue-green, little
           ambient light), turbid water (transmission 0.45, teal backscatter veil), gain-up
           sensor noise. Senses temperature and pressure.
medical    Autoclave cycles (134 degC, 18 min) between procedures age the elastomer: each is
           ARRHENIUS(134 degC) * STERILISATION_AGEING ~ 500 cycles of softening at 20 degC, so
           with one autoclave cycle per `sterilisation_interval` motion cycles the fatigue gain
           is 1 + 500 / interval; heat shock grows cracks (gain 1 + 500 / interval) and weakens
           layer bonds (delamination gain 1 + 1000 / interval). Many large deformations: higher
           pressures and frequency. No CO2 sensor.
space      Thermal cycling of dT (peak to peak, every orbit; Coffin-Manson, strain ~ CTE * dT):
           crack gain 1 + (dT / 100 K)^2, delamination gain 1 + 0.5 (dT / 100 K)^2, fatigue gain
           1 + 0.2 (dT / 100 K)^2. Radiation cross-links the elastomer: embrittlement
           e = 1 - exp(-dose_rate * N) stiffens it (x(1 + 0.6 e)), damps it less, and speeds
           cracks (gain x(1 + 3 e)). Vacuum (0 kPa, no humidity, no CO2). Harsh sun without
           ambient light: strong contrast. Senses temperature and pressure (a vacuum gauge).
carbon_negative_buildings
           Microbes colonise the bio-based skin when humid: film cover f grows logistically,
           df/dN = MICROBE_RATE * max(0, (H - 0.6) / 0.4) * (1 + (CO2 - 400) / 1600) * f (1 - f)
           from f0 = 0.01; biodegradation gains fatigue 1 + 1.5 f and crack 1 + f, the film
           damps the arm and stains the skin green-brown. Humid, CO2-rich air. Chemical sensor
           present (all four quantities).

The default profile is no profile: nothing here runs and the simulator is unchanged.
"""
from dataclasses import asdict, dataclass, replace
import math
from typing import Dict, Optional, Tuple

import numpy as np
from softmaint_core.profiles import profile as core_profile

from . import degradation as dg
from .arm import Look
from .sensors import FIELD_NOISE, NoiseModel, Optics

PRESSURE_REF = 10.0e3          # [kPa] pressure that doubles sea-water ingress (10 MPa)
STERILISATION_TEMPERATURE = 134.0   # [degC] autoclave
STERILISATION_AGEING = 5.0     # cycles of softening per autoclave cycle per Arrhenius unit
THERMAL_REF = 100.0            # [K] peak-to-peak swing of unit Coffin-Manson gain
MICROBE_RATE = 1.0e-4          # film growth rate per motion cycle at full humidity drive
FOULING_SEED = 0.01            # film cover of a new arm


@dataclass(frozen=True)
class Drivers:
    """Degradation drivers of a workplace that the environment reading does not carry."""

    salinity: float = 0.0                  # [g/kg] sea water 35
    sterilisation_interval: float = 0.0    # motion cycles between autoclave cycles, 0 = none
    thermal_cycle: float = 0.0             # [K] peak-to-peak temperature swing per orbit
    dose_rate: float = 0.0                 # embrittlement rate per motion cycle
    microbes: bool = False                 # a bio-based skin that microbes colonise


@dataclass(frozen=True)
class SimProfile:
    """Physics, scene and sensors of one application profile."""

    name: str
    drivers: Drivers                       # of the live demo scenario
    driver_ranges: Dict[str, Tuple[float, float]]   # sampled per dataset episode
    environment: Dict[str, Tuple[float, float]]     # dataset sampling ranges (true values)
    scenario_ranges: Dict[str, Tuple[float, float]]  # allowed in scenarios, beyond the defaults
    look: Look                             # live scene
    light: Tuple[float, float]             # dataset light range
    optics: Optional[Optics] = None
    noise: NoiseModel = FIELD_NOISE        # field sensors
    frequency: Tuple[float, float] = (0.4, 0.8)       # dataset motion cycle range [Hz]
    # dataset ranges of each chamber's peak pressure [kPa]
    amplitude: Tuple[Tuple[float, float], Tuple[float, float]] = (
        (100.0, 200.0), (50.0, 115.0))

    @property
    def unsensed_columns(self) -> Tuple[int, ...]:
        """Environment columns the robot reports as NaN."""
        return core_profile(self.name).unsensed_columns

    def to_dict(self) -> dict:
        """Plain dict for dataset cards."""
        return asdict(self)


def gains(drivers: Drivers, env: dg.Environment, embrittlement: float = 0.0,
          fouling: float = 0.0) -> Tuple[float, Dict[str, float]]:
    """Fatigue gain G_f and damage gains G_d of a workplace (module docstring)."""
    fatigue = 1.0
    damage = dict.fromkeys(dg.DAMAGE_RATE, 1.0)
    if drivers.salinity:
        ingress = drivers.salinity / 35.0 * (1.0 + env.pressure / PRESSURE_REF)
        fatigue *= 1.0 + 0.3 * ingress
        damage['crack_tear'] *= 1.0 + 0.6 * ingress
        damage['puncture_leak'] *= 1.0 + 0.4 * ingress
    if drivers.sterilisation_interval:
        per_cycle = dg.arrhenius(STERILISATION_TEMPERATURE) * STERILISATION_AGEING
        heat = per_cycle / drivers.sterilisation_interval
        fatigue *= 1.0 + heat
        damage['crack_tear'] *= 1.0 + heat
        damage['delamination_bulge'] *= 1.0 + 2.0 * heat
    if drivers.thermal_cycle:
        swing = (drivers.thermal_cycle / THERMAL_REF) ** 2
        fatigue *= 1.0 + 0.2 * swing
        damage['crack_tear'] *= 1.0 + swing
        damage['delamination_bulge'] *= 1.0 + 0.5 * swing
    damage['crack_tear'] *= 1.0 + 3.0 * embrittlement
    fatigue *= 1.0 + 1.5 * fouling
    damage['crack_tear'] *= 1.0 + fouling
    return fatigue, damage


def microbe_growth(drivers: Drivers, env: dg.Environment) -> float:
    """Logistic growth rate of the microbial film per motion cycle."""
    if not drivers.microbes:
        return 0.0
    humid = max(0.0, (env.humidity - 0.6) / 0.4)
    return MICROBE_RATE * humid * (1.0 + max(0.0, env.co2 - 400.0) / 1600.0)


def embrittlement_at(drivers: Drivers, cycles: float) -> float:
    """Embrittlement after `cycles` motion cycles at a constant dose rate."""
    return 1.0 - math.exp(-drivers.dose_rate * cycles)


def fouling_at(drivers: Drivers, env: dg.Environment, cycles: float) -> float:
    """Film cover after `cycles` motion cycles in a constant environment (logistic)."""
    if not drivers.microbes:
        return 0.0
    rate = microbe_growth(drivers, env)
    return 1.0 / (1.0 + (1.0 / FOULING_SEED - 1.0) * math.exp(-rate * cycles))


def update(state: dg.Degradation, drivers: Drivers, env: dg.Environment) -> None:
    """Set the state's gains for the current environment and material."""
    state.fatigue_gain, state.damage_gain = gains(drivers, env, state.embrittlement,
                                                  state.fouling)


def wear(state: dg.Degradation, drivers: Drivers, env: dg.Environment, cycles: float) -> None:
    """Advance embrittlement and film cover over `cycles` motion cycles (exact per step)."""
    if drivers.dose_rate:
        state.embrittlement = 1.0 - (1.0 - state.embrittlement) * math.exp(
            -drivers.dose_rate * cycles)
    rate = microbe_growth(drivers, env)
    if rate:
        f = max(state.fouling, FOULING_SEED)
        odds = f / (1.0 - f) * math.exp(rate * cycles)
        state.fouling = odds / (1.0 + odds)
    update(state, drivers, env)


def start(state: dg.Degradation, drivers: Drivers, env: dg.Environment) -> None:
    """Material state of an arm at its cycle count (a live run's start)."""
    state.embrittlement = embrittlement_at(drivers, state.cycles)
    state.fouling = fouling_at(drivers, env, state.cycles)
    update(state, drivers, env)


def sample_drivers(rng: np.random.Generator, prof: SimProfile) -> Drivers:
    """Draw one dataset episode's drivers from the profile's ranges."""
    values = {name: float(rng.uniform(*span)) for name, span in sorted(
        prof.driver_ranges.items())}
    return replace(prof.drivers, **values)


PROFILES: Dict[str, SimProfile] = {p.name: p for p in (
    SimProfile(
        'deep_sea', Drivers(salinity=35.0), {'salinity': (33.0, 37.0)},
        environment={'temperature': (1.5, 6.0), 'humidity': (1.0, 1.0), 'co2': (400.0, 400.0),
                     'pressure': (5.0e3, 40.0e3)},
        scenario_ranges={'temperature': (-2.0, 40.0), 'pressure': (50.0, 110.0e3)},
        look=Look(light=0.2, tint=(0.55, 0.85, 1.0), ambient=0.08), light=(0.12, 0.3),
        optics=Optics(transmission=0.45, haze=(0.05, 0.18, 0.22)),
        noise=replace(FIELD_NOISE, image_sigma=0.06, image_flicker=0.08,
                      env_sigma=(0.05, 0.02, 30.0, 10.0))),
    SimProfile(
        'medical', Drivers(sterilisation_interval=1000.0),
        {'sterilisation_interval': (500.0, 3000.0)},
        environment={'temperature': (19.0, 24.0), 'humidity': (0.3, 0.6),
                     'co2': (400.0, 1000.0), 'pressure': (99.0, 103.0)},
        scenario_ranges={}, look=Look(light=1.15, tint=(1.0, 1.0, 1.0)), light=(1.0, 1.3),
        frequency=(0.6, 1.0), amplitude=((133.0, 200.0), (83.0, 133.0))),
    SimProfile(
        'space', Drivers(thermal_cycle=150.0, dose_rate=1.0e-5),
        {'thermal_cycle': (80.0, 200.0), 'dose_rate': (0.3e-5, 2.0e-5)},
        environment={'temperature': (-20.0, 50.0), 'humidity': (0.0, 0.0), 'co2': (0.0, 0.0),
                     'pressure': (0.0, 0.001)},
        scenario_ranges={'temperature': (-150.0, 150.0), 'pressure': (0.0, 120.0)},
        look=Look(light=2.0, tint=(1.0, 1.0, 0.97), ambient=0.0), light=(1.6, 2.2),
        optics=Optics(contrast=1.6),
        noise=replace(FIELD_NOISE, image_sigma=0.03, env_sigma=(0.5, 0.02, 30.0, 0.0001))),
    SimProfile(
        'carbon_negative_buildings', Drivers(microbes=True), {},
        environment={'temperature': (15.0, 30.0), 'humidity': (0.55, 0.95),
                     'co2': (600.0, 2500.0), 'pressure': (97.0, 103.0)},
        scenario_ranges={'co2': (0.0, 10000.0)},
        look=Look(light=0.75, tint=(1.0, 0.95, 0.85)), light=(0.6, 1.0),
        noise=replace(FIELD_NOISE, env_sigma=(0.3, 0.03, 50.0, 0.1))),
)}


def sim_profile(name: str) -> Optional[SimProfile]:
    """Physics of profile `name`; None for the default (no profile); ProfileError if unknown."""
    core_profile(name)
    return PROFILES.get(name)
