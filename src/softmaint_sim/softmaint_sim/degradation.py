"""
Degradation state of the arm, its rate laws, remaining useful life and its physical effects.

Rate laws (N = motion cycles, A = environmental acceleration, L = load factor, c = the arm's own
rate factor, log-normal around 1):

  fatigue (cyclic softening, Mullins-like, accelerating as the elastomer softens)
      dk/dN = -R_K * A * L * c * G_f * (1 + BETA * (1 - k) / (1 - FAILURE_STIFFNESS))
  damage growth (Paris-law-like: the growth rate rises with the damage's own size)
      ds/dN = C_d * A * L * c * G_d * (s + S0) ** 2                       (s = severity in [0, 1])
  environment (Arrhenius in temperature, linear above 50 % relative humidity, weak CO2 term as a
  proxy for poorly ventilated, oxidising air)
      A = exp(EA / R * (1 / T_REF - 1 / T)) * (1 + HUMIDITY_GAIN * max(0, H - 0.5))
          * (1 + CO2_GAIN * (CO2 - 400) / 1600)
  load (Basquin-like, in the peak chamber pressure of the cycle)
      L = (p_peak / LOAD_REF) ** LOAD_EXPONENT

Application profiles (softmaint_sim.profiles) add drivers the environment reading does not carry
(sea-water ingress, sterilisation heat, thermal cycling, radiation, microbes) as gains on these
rates, G_f on fatigue and G_d per damage type (1 by default), and two slow states of the material:
embrittlement (radiation cross-linking: stiffer, less damped) and fouling (a microbial film on a
bio-based skin: more damping, a green-brown skin).

Remaining useful life extrapolates the *current* rates linearly, as the issue asks:
  RUL = min((k - FAILURE_STIFFNESS) / |dk/dN|, (1 - s) / (ds/dN))       [cycles]
over every site at the arm's own rate factor c (privileged: the physics' truth). The urgency
label is urgency_from_rul of the *observable* RUL: the same formula over the fatigue and the
detectable sites only, at the population's rate factor (c = 1), since no sensor sees an arm's
own c or a site below its detectable size (labelling them would teach the model to guess).

Observable damage labels: every damage site has a physical effect size (`effect`: pressure
shortfall of a leak, added lag of a clog, local stiffness loss of a crack, moment loss of a
delamination). A site is *labelled* only once its effect reaches DETECTABLE[type], the size at
which it stands out of the field sensors' noise in one window (docs/simulator.md says why each
threshold is where it is). Below it the site is physically there and wears the arm (the true
RUL counts it) but the damage label says 'none' and the urgency does not count it: no sensor
can tell it yet.

Pneumatic chambers (ChamberModel): gauge pressure p [kPa] of each chamber follows its valve
(first order, time constant tau, transport delay) and loses air through a puncture (an orifice
of area A_o, turbulent flow Q = C_d A_o sqrt(2 p / rho_air)); the air's stiffness K over the
chamber volume V turns flow into pressure:
  dp/dt = (p_cmd(t - delay) - p) / tau - (K / V) C_d A_o sqrt(2 p / rho_air)
"""
from dataclasses import dataclass, field
import functools
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
from softmaint_core.taxonomy import (
    DAMAGE_TYPES, FAILURE_STIFFNESS, fatigue_level, LOW_FATIGUE_MIN_STIFFNESS,
    MEDIUM_FATIGUE_MIN_STIFFNESS, urgency_from_rul)

from .arm import Physics, SIM_GEOMETRY

R_K = 2.5e-6             # fatigue softening per cycle of a new arm at reference conditions
BETA = 2.0               # acceleration of softening with accumulated softening
S0 = 0.05                # initial flaw size in the damage growth law
DAMAGE_RATE = {          # C_d per damage type [1/cycle]
    'none': 0.0,
    'puncture_leak': 6.0e-5,
    'crack_tear': 1.0e-4,
    'delamination_bulge': 7.5e-5,
    'actuator_clog': 5.0e-5,
}
EA = 40.0e3              # activation energy of elastomer ageing [J/mol]
GAS_R = 8.314            # [J/(mol K)]
T_REF = 20.0             # reference temperature [degC]
HUMIDITY_GAIN = 3.0      # rate x (1 + 3 * (H - 0.5)) above 50 % RH
CO2_GAIN = 0.15          # rate x 1.15 at 2000 ppm
LOAD_REF = 150.0         # reference peak chamber pressure [kPa]
LOAD_EXPONENT = 2.0

# Physical effect sizes
DAMPING_GROWTH = 2.5     # damping factor = 1 + this * softening / (1 - FAILURE_STIFFNESS)
CRACK_STIFFNESS_LOSS = 0.8     # local stiffness x (1 - this * severity) at the crack
CRACK_WIDTH = 0.06             # Gaussian half-width of the weakened zone [fraction of L]
PUNCTURE_AREA = 4.0e-6         # orifice area of a puncture at severity 1 [m^2] (2.3 mm hole)
ORIFICE_CD = 0.6               # discharge coefficient of a sharp-edged hole
AIR_DENSITY = 1.2              # [kg/m^3]
AIR_STIFFNESS = 150.0e3        # effective bulk modulus of the chamber air near 50 kPa gauge [Pa]
REFERENCE_PRESSURE = 100.0     # command at which a leak's shortfall is stated [kPa]
VALVE_TAU = 0.03               # nominal valve + chamber time constant [s]
CLOG_TAU_GAIN = 12.0           # clogged tau = VALVE_TAU * (1 + this * severity)
CLOG_DEAD_TIME = 0.12          # added transport delay at severity 1 [s]
DELAM_ARM_LOSS = 0.6           # chamber moment x (1 - this * severity) over the bulge
DELAM_REST_ANGLE = 0.06        # bulge rest bend per affected joint at severity 1 [rad]
DELAM_LENGTH = 0.2             # length of a delaminated zone [fraction of L]
DELAM_SOFTENING = 0.2          # local stiffness x (1 - this * severity) over the bulge
EMBRITTLE_STIFFENING = 0.6    # hinge stiffness x (1 + this * embrittlement)
EMBRITTLE_DAMPING = 0.3       # hinge damping x (1 - this * embrittlement): a glassier material
FOULING_DAMPING = 0.3         # hinge damping x (1 + this * fouling): a wet film on the skin
# Base joints strain most: their share of the softening (mean 1) along the arc, 0 -> 1.
FATIGUE_PROFILE = (1.3, 0.7)
# Effect size at which each damage type is labelled (see the module docstring and
# docs/simulator.md): leak shortfall at REFERENCE_PRESSURE [fraction], clog added lag [s],
# crack peak local stiffness loss [fraction], delamination moment loss [fraction].
DETECTABLE = {
    'puncture_leak': 0.05,
    'crack_tear': 0.25,
    'delamination_bulge': 0.20,
    'actuator_clog': 0.03,
}


@dataclass
class Environment:
    """Ambient conditions (EnvironmentReading units)."""

    temperature: float = 22.0   # [degC]
    humidity: float = 0.45      # [0, 1]
    co2: float = 450.0          # [ppm]
    pressure: float = 101.3     # [kPa]

    def as_array(self) -> np.ndarray:
        """[temperature, humidity, co2, pressure] like spec.ENVIRONMENT_FIELDS."""
        return np.array([self.temperature, self.humidity, self.co2, self.pressure])


def arrhenius(temperature: float) -> float:
    """Ageing rate at `temperature` [degC] relative to T_REF (Arrhenius, activation EA)."""
    return math.exp(EA / GAS_R * (1.0 / (T_REF + 273.15) - 1.0 / (temperature + 273.15)))


def acceleration(env: Environment) -> float:
    """Environmental acceleration factor A of every degradation rate (1 at 20 degC, dry)."""
    humid = 1.0 + HUMIDITY_GAIN * max(0.0, env.humidity - 0.5)
    co2 = 1.0 + CO2_GAIN * max(0.0, env.co2 - 400.0) / 1600.0
    return arrhenius(env.temperature) * humid * co2


def load_factor(peak_pressure: float) -> float:
    """Load factor L of the motion cycle with peak chamber pressure `peak_pressure` [kPa]."""
    return (max(peak_pressure, 0.0) / LOAD_REF) ** LOAD_EXPONENT


@dataclass
class Damage:
    """One damage site."""

    kind: int                    # index into DAMAGE_TYPES (> 0)
    severity: float              # [0, 1]
    location: float = 0.5        # arc-length fraction from the base [0, 1]
    side: int = 0                # actuator / side it affects (0 or 1)

    def rate(self, accel: float, load: float, rate_factor: float, gain: float = 1.0) -> float:
        """Growth of severity per cycle (`gain`: a profile's extra drivers of this type)."""
        return DAMAGE_RATE[DAMAGE_TYPES[self.kind]] * accel * load * rate_factor * gain * (
            self.severity + S0) ** 2

    def rul(self, accel: float, load: float, rate_factor: float, gain: float = 1.0) -> float:
        """Cycles until this damage reaches severity 1 at its current rate."""
        rate = self.rate(accel, load, rate_factor, gain)
        return max(0.0, 1.0 - self.severity) / rate if rate > 0 else math.inf


@dataclass
class Degradation:
    """
    Quasi-static degradation state of one arm.

    A dataset episode has at most one damage (`damage`, `severity`, `location`, `side`); a live
    scenario may add more sites in `extra`. The labelled damage is the one that fails first.
    """

    cycles: float = 0.0          # motion cycles since new
    stiffness: float = 1.0       # fatigue: remaining fraction of nominal bending stiffness
    damage: int = 0              # index into DAMAGE_TYPES
    severity: float = 0.0        # damage severity [0, 1]
    location: float = 0.5        # damage site as arc-length fraction from the base [0, 1]
    side: int = 0                # actuator / side the damage affects (0 or 1)
    rate_factor: float = 1.0     # this arm's rate multiplier (manufacturing spread)
    extra: List[Damage] = field(default_factory=list)
    # Set by an application profile (softmaint_sim.profiles); the defaults change nothing.
    fatigue_gain: float = 1.0    # G_f
    damage_gain: Dict[str, float] = field(default_factory=dict)   # G_d by damage name, else 1
    embrittlement: float = 0.0   # [0, 1] radiation cross-linking of the elastomer
    fouling: float = 0.0         # [0, 1] microbial film cover of the skin

    @property
    def damage_name(self) -> str:
        """Name of the (primary) damage type."""
        return DAMAGE_TYPES[self.damage]

    def damages(self) -> List[Damage]:
        """All damage sites; editing them edits the state."""
        primary = [Damage(self.damage, self.severity, self.location, self.side)] \
            if self.damage else []
        return primary + list(self.extra)

    def gain(self, damage: Damage) -> float:
        """Profile gain G_d of a damage site's type."""
        return self.damage_gain.get(DAMAGE_TYPES[damage.kind], 1.0)

    def fatigue_rate(self, accel: float, load: float,
                     rate_factor: Optional[float] = None) -> float:
        """Loss of stiffness fraction per cycle (>= 0); `rate_factor` replaces the arm's own."""
        softening = 1.0 - self.stiffness
        c = self.rate_factor if rate_factor is None else rate_factor
        return R_K * accel * load * c * self.fatigue_gain * (
            1.0 + BETA * softening / (1.0 - FAILURE_STIFFNESS))

    def damage_rate(self, accel: float, load: float) -> float:
        """Severity growth per cycle of the damage that fails first, detectable or not (or 0)."""
        worst = self.worst_damage(accel, load)
        return worst.rate(accel, load, self.rate_factor, self.gain(worst)) if worst else 0.0

    def worst_damage(self, accel: float, load: float, visible_only: bool = False,
                     geo=None) -> Optional[Damage]:
        """Return the (detectable, with `visible_only`) damage that fails first, or None."""
        damages = [d for d in self.damages() if not visible_only or detectable(d, geo)]
        if not damages:
            return None
        return min(damages, key=lambda d: d.rul(accel, load, self.rate_factor, self.gain(d)))

    def rul(self, accel: float, load: float, observable: bool = False, geo=None) -> float:
        """
        Remaining useful life [cycles] at the current rates.

        `observable`: the life the sensors can tell, of the fatigue and the detectable sites at
        the population's rate factor (1) instead of this arm's own.
        """
        c = 1.0 if observable else self.rate_factor
        fatigue = max(0.0, self.stiffness - FAILURE_STIFFNESS) / self.fatigue_rate(accel, load, c)
        damages = [d for d in self.damages() if not observable or detectable(d, geo)]
        damage = min((d.rul(accel, load, c, self.gain(d)) for d in damages), default=math.inf)
        return float(min(fatigue, damage))

    def labels(self, accel: float, load: float, geo=None) -> Dict[str, float]:
        """
        Return the fatigue class, damage class and severity, urgency and RUL.

        The damage label is the detectable site that fails first ('none' while every site is
        below its DETECTABLE effect); the urgency is that of the observable RUL (see rul), the
        RUL returned the true one over every site at this arm's rate factor.
        """
        worst = self.worst_damage(accel, load, visible_only=True, geo=geo)
        return {'fatigue': fatigue_level(min(1.0, max(0.0, self.stiffness))),
                'damage': worst.kind if worst else 0,
                'severity': worst.severity if worst else 0.0,
                'urgency': urgency_from_rul(self.rul(accel, load, observable=True, geo=geo)),
                'rul': self.rul(accel, load)}

    def advance(self, cycles: float, accel: float, load: float) -> None:
        """Integrate the rate laws over `cycles` motion cycles (explicit, in small sub-steps)."""
        remaining = float(cycles)
        while remaining > 0:
            step = min(remaining, 20.0)
            dk = self.fatigue_rate(accel, load) * step
            if self.damage:
                primary = Damage(self.damage, self.severity)
                self.severity = min(1.0, self.severity + step * primary.rate(
                    accel, load, self.rate_factor, self.gain(primary)))
            for extra in self.extra:
                extra.severity = min(1.0, extra.severity + step * extra.rate(
                    accel, load, self.rate_factor, self.gain(extra)))
            self.stiffness = max(0.0, self.stiffness - dk)
            self.cycles += step
            remaining -= step

    def add_damage(self, damage: Damage) -> None:
        """Add a damage site (the first one becomes the primary damage)."""
        if not self.damage:
            self.damage, self.severity = damage.kind, damage.severity
            self.location, self.side = damage.location, damage.side
        else:
            self.extra.append(damage)


def cycles_to_soften(stiffness: float, accel: float, load: float, rate_factor: float,
                     fatigue_gain: float = 1.0) -> float:
    """
    Cycles a new arm needs to soften to `stiffness` under constant conditions (closed form).

    With u = 1 - k and u_f = 1 - FAILURE_STIFFNESS the law du/dN = r (1 + BETA u / u_f) gives
    N = u_f / (BETA r) * ln(1 + BETA u / u_f).
    """
    r = R_K * accel * load * rate_factor * fatigue_gain
    u_f = 1.0 - FAILURE_STIFFNESS
    return u_f / (BETA * r) * math.log1p(BETA * (1.0 - stiffness) / u_f)


def fatigue_band(level: int) -> Tuple[float, float]:
    """Stiffness-fraction interval of a fatigue level (before failure)."""
    return [(LOW_FATIGUE_MIN_STIFFNESS, 1.0),
            (MEDIUM_FATIGUE_MIN_STIFFNESS, LOW_FATIGUE_MIN_STIFFNESS),
            (FAILURE_STIFFNESS + 0.01, MEDIUM_FATIGUE_MIN_STIFFNESS)][level]


def puncture_coefficient(severity: float, volume: float) -> float:
    """
    Leak coefficient beta [kPa^0.5 / s] of a puncture: dp/dt = -beta sqrt(p), p in kPa.

    beta = (K / V) C_d A_o sqrt(2 / rho_air), converted from SI (Pa) to kPa.
    """
    area = PUNCTURE_AREA * max(0.0, severity)
    beta_si = AIR_STIFFNESS / volume * ORIFICE_CD * area * math.sqrt(2.0 / AIR_DENSITY)
    return beta_si / math.sqrt(1.0e3)


@dataclass
class ChamberModel:
    """Pressure dynamics of the two chambers: valve lag, transport delay, puncture leak."""

    tau: Tuple[float, float] = (VALVE_TAU, VALVE_TAU)     # valve + chamber time constant [s]
    leak: Tuple[float, float] = (0.0, 0.0)                 # puncture coefficient [kPa^0.5/s]
    dead_time: Tuple[float, float] = (0.0, 0.0)            # transport delay [s]

    def steady_pressure(self, i: int, command: float) -> float:
        """Chamber pressure [kPa] held against the leak at a constant `command` [kPa]."""
        b = self.tau[i] * self.leak[i]      # p + b sqrt(p) = command
        root = 0.5 * (-b + math.sqrt(b * b + 4.0 * max(command, 0.0)))
        return root * root

    def shortfall(self, i: int, command: float = REFERENCE_PRESSURE) -> float:
        """Steady-state fraction of a `command` lost to the leak [0, 1]."""
        return 1.0 - self.steady_pressure(i, command) / command

    @property
    def lag(self) -> float:
        """Worst command-to-response lag [s]: time constant plus delay."""
        return max(t + d for t, d in zip(self.tau, self.dead_time))

    def respond(self, command: np.ndarray, dt: float, state=None) -> Tuple[np.ndarray, list]:
        """
        Chamber pressures [T, 2] [kPa] for commanded pressures [T, 2] sampled every `dt` s.

        The valve's first-order response is exact for a zero-order hold; the leak is taken
        implicitly over the same hold (x = sqrt(p) solves x^2 + h beta x = p_valve with
        h = tau (1 - exp(-dt / tau)), which keeps the steady state exact), so a large hole
        empties the chamber without overshooting below zero. `state` carries (p, delayed
        command buffer) across calls for the live node; tau = inf is a closed valve (h = dt).
        """
        command = np.asarray(command, dtype=np.float64)
        out = np.empty_like(command)
        new_state = []
        for i in range(command.shape[1]):
            p, queue = (0.0, []) if state is None else state[i]
            delay = int(round(self.dead_time[i] / dt))
            if len(queue) < delay:   # the delay grew (a clog worsened): hold the oldest input
                queue = [queue[0] if queue else 0.0] * (delay - len(queue)) + list(queue)
            elif len(queue) > delay:
                queue = list(queue[len(queue) - delay:])
            u = np.concatenate([np.asarray(queue, dtype=np.float64)
                                if queue else np.zeros(delay), command[:, i]])
            alpha = math.exp(-dt / self.tau[i])
            hold = dt if math.isinf(self.tau[i]) else -self.tau[i] * math.expm1(-dt / self.tau[i])
            b = hold * self.leak[i]
            for k, value in enumerate(u[:len(command)]):
                valve = alpha * p + (1.0 - alpha) * value
                root = 0.5 * (-b + math.sqrt(b * b + 4.0 * max(valve, 0.0)))
                p = root * root
                out[k, i] = p
            new_state.append((p, list(u[len(command):])))
        return out, new_state


def arc_profile(segments: int) -> np.ndarray:
    """Arc-length fraction of each joint (the segments' mid-points)."""
    return (np.arange(segments) + 0.5) / segments


def apply(state: Degradation, geo=None) -> Tuple[Physics, ChamberModel]:
    """Physical parameters of an arm `geo` in degradation `state` (what the labels name)."""
    geo = geo or SIM_GEOMETRY
    n = geo.segments
    arc = arc_profile(n)
    softening = 1.0 - state.stiffness
    damping = np.full(n, 1.0 + DAMPING_GROWTH * softening / (1.0 - FAILURE_STIFFNESS))
    rest = np.zeros((2, n))
    arms = np.ones((2, n))
    crack = np.zeros(n)
    tau, leak, dead = [VALVE_TAU, VALVE_TAU], [0.0, 0.0], [0.0, 0.0]
    volume = geo.chamber_area * geo.length
    for site in state.damages():
        s = site.severity
        name = DAMAGE_TYPES[site.kind]
        if name == 'crack_tear':
            crack = np.clip(crack + crack_profile(arc, site.location, s)
                            / CRACK_STIFFNESS_LOSS, 0.0, 1.0)
        elif name == 'puncture_leak':
            leak[site.side] += puncture_coefficient(s, volume)
        elif name == 'actuator_clog':
            tau[site.side] *= 1.0 + CLOG_TAU_GAIN * s
            dead[site.side] += CLOG_DEAD_TIME * s
        elif name == 'delamination_bulge':
            zone = delamination_zone(arc, site.location)
            arms[site.side, zone] *= 1.0 - DELAM_ARM_LOSS * s
            # the bulge lengthens the delaminated side: the arm bends away from it at rest
            rest[site.side, zone] += DELAM_REST_ANGLE * s
    if state.embrittlement > 0:
        damping = damping * (1.0 - EMBRITTLE_DAMPING * state.embrittlement)
    if state.fouling > 0:
        damping = damping * (1.0 + FOULING_DAMPING * state.fouling)
    physics = Physics(stiffness=stiffness_profile(state, arc), damping=damping, rest_bend=rest,
                      arms=arms, crack=crack, fouling=state.fouling)
    return physics, ChamberModel(tuple(tau), tuple(leak), tuple(dead))


def stiffness_profile(state: Degradation, arc: np.ndarray) -> np.ndarray:
    """
    Bending stiffness fraction of the material at arc-length fractions `arc` (0 = clamp).

    A continuous function of arc length, so that the MuJoCo arm (sampled at its joints) and
    the Cosserat reference (at its nodes) see the same material: fatigue softening with a
    larger share at the base, crack and delamination weakening, radiation stiffening.
    """
    arc = np.asarray(arc, dtype=np.float64)
    share = FATIGUE_PROFILE[0] + (FATIGUE_PROFILE[1] - FATIGUE_PROFILE[0]) * arc
    stiff = np.clip(1.0 - (1.0 - state.stiffness) * share, 0.05, 1.0)
    for site in state.damages():
        name = DAMAGE_TYPES[site.kind]
        if name == 'crack_tear':
            stiff = stiff * (1.0 - crack_profile(arc, site.location, site.severity))
        elif name == 'delamination_bulge':
            zone = delamination_zone(arc, site.location)
            stiff = np.where(zone, stiff * (1.0 - DELAM_SOFTENING * site.severity), stiff)
    if state.embrittlement > 0:
        stiff = stiff * (1.0 + EMBRITTLE_STIFFENING * state.embrittlement)
    return stiff


def delamination_zone(arc: np.ndarray, location: float) -> np.ndarray:
    """Mask of the arc-length fractions inside a delamination centred at `location`."""
    return np.abs(np.asarray(arc) - location) <= DELAM_LENGTH / 2 + 1e-9


def crack_profile(arc: np.ndarray, location: float, severity: float) -> np.ndarray:
    """Fraction of stiffness a crack removes at arc-length fractions `arc` (peak 0.8 s)."""
    return CRACK_STIFFNESS_LOSS * severity * np.exp(-((arc - location) / CRACK_WIDTH) ** 2)


def effect(damage: Damage, geo=None) -> float:
    """
    Physical effect size of a damage site, in the unit of its DETECTABLE threshold.

    Leak: steady shortfall at REFERENCE_PRESSURE; clog: lag added to the valve [s]; crack:
    peak local stiffness loss; delamination: loss of chamber moment over the bulge.
    """
    geo = geo or SIM_GEOMETRY
    s = damage.severity
    name = DAMAGE_TYPES[damage.kind]
    if name == 'puncture_leak':
        chambers = ChamberModel(leak=(puncture_coefficient(s, geo.chamber_area * geo.length),
                                      0.0))
        return chambers.shortfall(0)
    if name == 'actuator_clog':
        return VALVE_TAU * CLOG_TAU_GAIN * s + CLOG_DEAD_TIME * s
    if name == 'crack_tear':
        return CRACK_STIFFNESS_LOSS * s
    if name == 'delamination_bulge':
        return DELAM_ARM_LOSS * s
    return 0.0


def detectable(damage: Damage, geo=None) -> bool:
    """Whether a damage site's effect has reached the size the sensors can see."""
    return effect(damage, geo) >= DETECTABLE[DAMAGE_TYPES[damage.kind]]


@functools.lru_cache(maxsize=64)
def detectable_severity(kind: int, geo=None) -> float:
    """Smallest severity at which a damage of type `kind` is labelled (bisection on effect)."""
    low, high = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if detectable(Damage(kind, mid), geo) else (mid, high)
    return high
